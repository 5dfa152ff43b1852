"""Binance USDT-M error codes and messages, as the exchange answers them.

Every refusal the local exchange sends is a :class:`BinanceError`: the REST layer
turns it into ``{"code": ..., "msg": ...}`` with the HTTP status Binance uses, and
the matching core raises it before touching any state, so a refused request never
changes anything. Codes are real Binance codes (Nautilus parses some of them into
its ``BinanceErrorCode`` enum, which rejects unknown values).
"""

from __future__ import annotations

# The messages Binance sends for the codes this exchange produces. ``%s`` slots are
# filled by the raiser; the fault injector uses the plain text for "reject next order".
MESSAGES: dict[int, str] = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; please use the websocket for live updates.",
    -1008: "Server is currently overloaded with other requests. Please try again in a few minutes.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1099: "Not found, unauthenticated, or unauthorized.",
    -1100: "Illegal characters found in a parameter.",
    -1102: "Mandatory parameter '%s' was not sent, was empty/null, or malformed.",
    -1104: "Not all sent parameters were read; read '%s' parameter(s) but was sent '%s'.",
    -1106: "Parameter '%s' sent when not required.",
    -1111: "Precision is over the maximum defined for this asset.",
    -1115: "Invalid timeInForce.",
    -1116: "Invalid orderType.",
    -1117: "Invalid side.",
    -1120: "Invalid interval.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -1130: "Data sent for parameter '%s' is not valid.",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2022: "ReduceOnly Order is rejected.",
    -2025: "Reach max open order limit.",
    -4001: "Price less than 0.",
    -4002: "Price greater than max price.",
    -4003: "Quantity less than or equal to zero.",
    -4004: "Quantity less than min quantity.",
    -4005: "Quantity greater than max quantity.",
    -4013: "Price less than min price.",
    -4014: "Price not increased by tick size.",
    -4015: "Client order id is not valid.",
    -4023: "Quantity not increased by step size.",
    -4028: "Leverage %s is not valid",
    -4046: "No need to change margin type.",
    -4059: "No need to change position side.",
    -4061: "Order's position side does not match user's setting.",
    -4068: "Position side cannot be changed if there exists position.",
    -4067: "Position side cannot be changed if there exists open orders.",
    -4116: "ClientOrderId is duplicated.",
    -4120: "Order type not supported for this endpoint. "
    "Please use the Algo Order API endpoints instead.",
    -4164: "Order's notional must be no smaller than %s (unless you choose reduce only).",
    -5021: "Due to the order could not be filled immediately, the FOK order has been rejected. "
    "The order will not be recorded in the order history",
    -5022: "Due to the order could not be executed as maker, the Post Only order will be rejected. "
    "The order will not be recorded in the order history",
    -5027: "No need to modify the order.",
    -5040: "goodTillDate timestamp must be greater than the current time plus 600 seconds and "
    "smaller than 253402300799000",
}

# Binance answers authentication problems with 401 and rate limits with 429; almost
# every other refusal is a 400.
_STATUS_BY_CODE: dict[int, int] = {-2014: 401, -2015: 401, -1099: 404, -1003: 429}


class BinanceError(Exception):
    """A request Binance would refuse: ``code``/``msg`` go on the wire unchanged."""

    def __init__(self, code: int, msg: str | None = None, status: int | None = None) -> None:
        text = msg if msg is not None else MESSAGES.get(code, "Request rejected.")
        super().__init__(f"{code}: {text}")
        self.code = code
        self.msg = text
        self.status = status if status is not None else _STATUS_BY_CODE.get(code, 400)

    def body(self) -> dict[str, object]:
        """The JSON body Binance sends with the error."""
        return {"code": self.code, "msg": self.msg}


def error(code: int, *args: object, status: int | None = None) -> BinanceError:
    """``BinanceError`` with Binance's message for ``code``, ``%s`` slots filled from ``args``."""
    template = MESSAGES.get(code, "Request rejected.")
    msg = template % args if args else template
    return BinanceError(code, msg, status)


def missing(name: str) -> BinanceError:
    """-1102 for a mandatory parameter that was not sent."""
    return error(-1102, name)


def invalid(name: str) -> BinanceError:
    """-1130 for a parameter whose value Binance would not accept."""
    return error(-1130, name)
