"""The lag view on a cluster of idle groups: like `lag --watch`, a refresh reads again only the
groups with members or lag, and every group on every 6th refresh (the first one included), so a
shared cluster's thousands of idle groups are not read every few seconds."""

from __future__ import annotations

from dataclasses import replace

from workbench import service
from workbench.broker import OutgoingEvent
from workbench.tui.screens.lag import LagScreen

from .conftest import SIZE, Passthrough, make_app, make_target, settle

IDLE, BUSY = 40, 3


class Recorder(Passthrough):
    """The app's connection; which groups each lag request names (None: every group)."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.asked: list[list[str] | None] = []

    async def lag(self, group_ids=None, **kwargs):
        self.asked.append(None if group_ids is None else sorted(group_ids))
        return await self.inner.lag(group_ids, **kwargs)


async def test_idle_groups_are_read_again_every_6th_refresh_only(isolated_home):
    async def seed() -> None:
        async with service.connect(make_target()) as conn:
            await conn.create_topic("clicks", 1)
            await conn.publish("clicks", [OutgoingEvent(value=b"{}") for _ in range(10)])
            for i in range(IDLE):
                await conn.commit_offsets(f"idle-{i:02d}", {("clicks", 0): 10})  # read to the end
            for i in range(BUSY):
                await conn.commit_offsets(f"busy-{i}", {("clicks", 0): 3})  # 7 behind

    await seed()
    quiet = make_target()  # a group that committed is "Stable" for 30 s on the local log: not here
    quiet = replace(quiet, options={**quiet.options, "stable_window_ms": 0})
    app = make_app(quiet, lag_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: app.conn is not None and app.main.topics, "the connection")
        recorder = app.conn = Recorder(app.conn)
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LagScreen) and app.screen.loaded >= 8, "8 refreshes")
        busy = [f"busy-{i}" for i in range(BUSY)]
        assert recorder.asked[:8] == [None, busy, busy, busy, busy, busy, None, busy]
        assert len(app.screen.groups) == IDLE + BUSY  # the idle ones still shown, with their last figures
        async with service.connect(make_target()) as conn:  # an idle group falls behind
            await conn.publish("clicks", [OutgoingEvent(value=b"{}")])
        seen = len(recorder.asked)
        await settle(pilot, lambda: len(recorder.asked) >= seen + 6, "the next full read")
        lags = {g.group_id: g.total for g in app.screen.groups}
        assert lags["idle-00"] == 1 and lags["busy-0"] == 8
