"""@guarded: a plain function that runs only when the PDP answers ALLOW."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, Callable, Iterable, Optional, TypeVar, Union

from agentpdp._types import Decision, summarize_error
from agentpdp.client import AsyncClient, Client

F = TypeVar("F", bound=Callable[..., Any])
_ArgsFn = Callable[[dict], Any]


def _value(v: Union[Any, _ArgsFn], args: dict) -> Any:
    return v(args) if callable(v) else v


def bound_arguments(sig: inspect.Signature, a: tuple, kw: dict, exclude: Iterable[str]) -> dict:
    """The call's arguments by parameter name, defaults applied; ``**kwargs``
    are merged in, ``*args`` kept as a list."""
    b = sig.bind(*a, **kw)
    b.apply_defaults()
    out: dict[str, Any] = {}
    skip = set(exclude)
    for name, value in b.arguments.items():
        if name in skip:
            continue
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        else:
            out[name] = value
    return out


def guarded(
    tool: Optional[str] = None,
    *,
    client: Union[Client, AsyncClient],
    agent: Optional[str] = None,
    principal: Union[str, dict, _ArgsFn, None] = None,
    session_id: Union[str, _ArgsFn, None] = None,
    resource: Union[dict, _ArgsFn, None] = None,
    inputs: Union[list, _ArgsFn, None] = None,
    wait_approval: Optional[float] = None,
    report: bool = True,
    exclude: Iterable[str] = ("self", "cls"),
    framework: str = "python",
) -> Callable[[F], F]:
    """Guards a sync or async function: the PDP decides each call from the
    function's bound arguments (as ``args``) and the function runs only on
    ALLOW. On DENY it raises :class:`agentpdp.Denied` (also when the PDP is
    unreachable: fail closed); on REQUIRE_APPROVAL it raises
    :class:`agentpdp.ApprovalRequired`, or with ``wait_approval`` seconds it
    waits for a human's decision and runs once approved. After the function
    returns or raises, its outcome is reported in the background.

    ``principal``, ``session_id``, ``resource`` and ``inputs`` may be values or
    functions of the bound-arguments dict; unset, they come from
    :func:`agentpdp.call_context`::

        @guarded(tool="gmail.send", agent="email-agent", client=pdp)
        def send_email(to: list[str], subject: str, body: str) -> str: ...
    """

    def decorate(fn: F) -> F:
        name = tool or fn.__name__
        sig = inspect.signature(fn)

        def request_kw(a: tuple, kw: dict) -> dict:
            args = bound_arguments(sig, a, kw, exclude)
            return dict(
                tool=name, agent=agent, args=args, framework=framework, wait_approval=wait_approval,
                principal=_value(principal, args), session_id=_value(session_id, args),
                resource=_value(resource, args), inputs=_value(inputs, args),
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*a: Any, **kw: Any) -> Any:
                rk = request_kw(a, kw)
                if isinstance(client, AsyncClient):
                    d = await client.require(**rk)
                else:
                    d = await asyncio.to_thread(client.require, **rk)
                try:
                    result = await fn(*a, **kw)
                except BaseException as e:
                    _report(client, d, rk["agent"], "failed", summarize_error(e))
                    raise
                _report(client, d, rk["agent"], "succeeded", "")
                return result

            return async_wrapper  # type: ignore[return-value]

        if isinstance(client, AsyncClient):
            raise TypeError("guarded: a sync function needs a sync agentpdp.Client")

        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            rk = request_kw(a, kw)
            d = client.require(**rk)
            try:
                result = fn(*a, **kw)
            except BaseException as e:
                _report(client, d, rk["agent"], "failed", summarize_error(e))
                raise
            _report(client, d, rk["agent"], "succeeded", "")
            return result

        return wrapper  # type: ignore[return-value]

    if not report:
        def _report(*_a: Any, **_k: Any) -> None:
            return None
    else:
        _report = report_in_background
    return decorate


def report_in_background(client: Union[Client, AsyncClient], d: Decision, agent: Optional[str],
                         status: str, summary: str) -> None:
    """Reports an outcome without waiting for, or failing on, the report."""
    if not d.decision_id:
        return
    try:
        client.report_outcome_background(d.decision_id, status, summary, agent=agent)
    except Exception:  # noqa: BLE001 - reporting never fails the tool call
        pass
