"""The profile picker: every profile of the profile file; choosing one reconnects the app to it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from workbench import config
from workbench.config import Profile
from workbench.events import codecs


def shown_broker(profile: Profile) -> str:
    """Where the profile points, secrets masked; a local event log by its path (the profile may
    name none: the default file), never ``local()``."""
    if profile.broker or (profile.adapter or config.DEFAULT_ADAPTER) != config.DEFAULT_ADAPTER:
        return profile.shown_broker()
    try:
        return f"local:{config.resolve(profile).options['path']}"
    except Exception:  # noqa: BLE001 - e.g. a ${VAR} not set: show what the file says
        return profile.shown_broker()


def profile_line(profile: Profile, current: bool) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("● " if current else "  ", style="green")
    text.append(codecs.safe_text(profile.name), style="bold")
    text.append(f"  {codecs.safe_text(shown_broker(profile))}", style="dim")  # secrets masked
    if profile.production:
        text.append("  production", style="bold red")
    if profile.read_only:
        text.append("  read-only", style="yellow")
    if profile.description:
        text.append(f"  {codecs.safe_text(profile.description)}", style="italic")
    return text


class ProfilePicker(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ProfilePicker { align: center middle; }
    #profile-dialog {
        width: 80; height: auto; max-height: 80%; padding: 1 2; border: thick $accent; background: $surface;
    }
    #profile-list { height: 10; margin: 1 0; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="profiles.cancel", tooltip="cancel a dialog")]

    def __init__(self, profiles: Sequence[Profile], current: str, source: str) -> None:
        super().__init__()
        self.profiles = list(profiles)
        self.current = current
        self.source = source

    def compose(self):
        with Vertical(id="profile-dialog"):
            yield Static(Text("Switch profile", style="bold"))
            yield Static(Text(f"from {codecs.safe_text(self.source)}", style="dim"))
            yield OptionList(
                *(Option(profile_line(p, p.name == self.current), id=p.name) for p in self.profiles), id="profile-list"
            )
            yield Static(Text("enter connects to it (the current reads stop) · escape cancels", style="dim"))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [p.name for p in self.profiles]
        options.highlighted = names.index(self.current) if self.current in names else 0
        options.focus()

    def on_option_list_option_selected(self, message: OptionList.OptionSelected) -> None:
        message.stop()
        self.dismiss(message.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
