"""The built-in saga: the order saga of the demo's order platform, as a profile file would define it.

It applies when the profile file defines no saga (:func:`workbench.sagas.settings.definitions`);
``workbench demo`` seeds events that follow it.
"""

from __future__ import annotations

STUCK_AFTER = "15m"  # a saga with no new event for this long is stuck

# The order saga as a profile file would define it; it applies when the profile file defines none
# (workbench.sagas.settings.definitions). Inventory is the pivot: once stock is reserved the order only goes
# forward, so a failed shipment is retried, not compensated (unless --override).
SAGA_TOML = f"""
[sagas.order]
description = "The demo's order saga: order, payment, stock, shipping, completion"
topics = ["orders", "payments", "inventory", "shipping"]
stuck_after = "{STUCK_AFTER}"

[[sagas.order.steps]]
name = "order"
kind = "compensatable"
done_when = 'type == "OrderPlaced"'
compensated_when = 'type == "OrderCancelled"'
[sagas.order.steps.compensation]
topic = "orders"
type = "OrderCancelled"
source = "/orders-service"
key = "{{order.key}}"
payload = {{ orderId = "{{order.value.orderId}}", customerId = "{{order.value.customerId}}", \
amount = "{{order.value.amount}}", currency = "{{order.value.currency}}", reason = "saga compensation", \
correlationId = "{{correlation_id}}" }}

[[sagas.order.steps]]
name = "payment"
kind = "compensatable"
done_when = 'type == "PaymentProcessed"'
failed_when = 'type == "PaymentFailed"'
compensated_when = 'type == "PaymentRefunded"'
[sagas.order.steps.compensation]
topic = "payments"
type = "PaymentRefunded"
source = "/payments-service"
key = "{{order.key}}"
payload = {{ orderId = "{{order.value.orderId}}", customerId = "{{order.value.customerId}}", \
paymentId = "{{payment.value.paymentId}}", amount = "{{payment.value.amount}}", \
currency = "{{payment.value.currency}}", reason = "saga compensation", correlationId = "{{correlation_id}}" }}

[[sagas.order.steps]]
name = "inventory"
kind = "pivot"
done_when = 'type == "InventoryReserved"'
failed_when = 'type == "InventoryOutOfStock"'

[[sagas.order.steps]]
name = "shipping"
kind = "retriable"
done_when = 'type == "ShipmentScheduled"'
failed_when = 'type == "ShipmentFailed"'

[[sagas.order.steps]]
name = "completion"
kind = "retriable"
done_when = 'type == "OrderCompleted"'
"""
