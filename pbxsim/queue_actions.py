"""AMI queue actions with app_queue's replies: QueueAdd/Remove/Pause/Penalty/Status/Summary."""

from __future__ import annotations

from .actions import ActionContext, action
from .ami_codec import AmiMessage, Fields, error, list_complete, list_start, success
from .devices import INVALID, NOT_INUSE, UNAVAILABLE, UNKNOWN
from .queue_manager import Res
from .queues import member_status_fields


def _truth(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value.strip())
    except ValueError:
        return default


@action("QueueAdd")
async def a_queueadd(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    queue, iface = msg.get("Queue").strip(), msg.get("Interface").strip()
    if not queue:
        return [error(msg, "'Queue' not specified.")]
    if not iface:
        return [error(msg, "'Interface' not specified.")]
    penalty = max(0, _int(msg.get("Penalty"), 0))
    res = ctx.core.queues.add_member(
        queue, iface, penalty=penalty, paused=_truth(msg.get("Paused")),
        membername=msg.get("MemberName").strip(),
        state_interface=msg.get("StateInterface").strip(), reason=msg.get("Reason").strip(),
        wrapuptime=max(0, _int(msg.get("Wrapuptime"), 0)))
    if res is Res.OKAY:
        return [success(msg, "Added interface to queue")]
    if res is Res.EXISTS:
        return [error(msg, "Unable to add interface: Already there")]
    return [error(msg, "Unable to add interface to queue: No such queue")]


@action("QueueRemove")
async def a_queueremove(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    queue, iface = msg.get("Queue").strip(), msg.get("Interface").strip()
    if not queue or not iface:
        return [error(msg, "Need 'Queue' and 'Interface' parameters.")]
    res = ctx.core.queues.remove_member(queue, iface)
    if res is Res.OKAY:
        return [success(msg, "Removed interface from queue")]
    if res is Res.EXISTS:
        return [error(msg, "Unable to remove interface: Not there")]
    if res is Res.NOT_DYNAMIC:
        return [error(msg, "Member not dynamic")]
    return [error(msg, "Unable to remove interface from queue: No such queue")]


@action("QueuePause")
async def a_queuepause(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    iface, paused_s = msg.get("Interface").strip(), msg.get("Paused").strip()
    if not iface or not paused_s:
        return [error(msg, "Need 'Interface' and 'Paused' parameters.")]
    paused = _truth(paused_s)
    if not ctx.core.queues.pause(msg.get("Queue").strip(), iface, paused,
                                 msg.get("Reason").strip()):
        return [error(msg, "Interface not found")]
    return [success(msg, "Interface paused successfully" if paused
                    else "Interface unpaused successfully")]


@action("QueuePenalty")
async def a_queuepenalty(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    iface, penalty_s = msg.get("Interface").strip(), msg.get("Penalty").strip()
    if not iface or not penalty_s:
        return [error(msg, "Need 'Interface' and 'Penalty' parameters.")]
    if not ctx.core.queues.set_penalty(msg.get("Queue").strip(), iface, _int(penalty_s, -1)):
        return [error(msg, "Invalid interface, queuename or penalty")]
    return [success(msg, "Interface penalty set successfully")]


@action("QueueStatus")
async def a_queuestatus(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    core = ctx.core
    wanted, member_filter = msg.get("Queue").strip(), msg.get("Member").strip()
    aid = [("ActionID", msg.action_id)] if msg.action_id else []
    out = [list_start(msg, "Queue status will follow")]
    now = core.clock.now()
    for q in core.queues.queues.values():
        if wanted and q.name != wanted:
            continue
        s = q.stats
        perf, perf2 = q.service_level_perf()
        out.append([("Event", "QueueParams"), ("Queue", q.name), ("Max", str(q.config.maxlen)),
                    ("Strategy", q.config.strategy), ("Calls", str(len(q.callers))),
                    ("Holdtime", str(s.holdtime)), ("TalkTime", str(s.talktime)),
                    ("Completed", str(s.completed)), ("Abandoned", str(s.abandoned)),
                    ("ServiceLevel", str(q.config.servicelevel)), ("ServicelevelPerf", perf),
                    ("ServicelevelPerf2", perf2), ("Weight", str(q.config.weight)), *aid])
        for m in q.members.values():
            if member_filter and member_filter not in (m.interface, m.membername):
                continue
            out.append([*member_status_fields(q, m, core.queues.status(m)), *aid])
        for pos, c in enumerate(q.callers, 1):
            ch = c.chan
            out.append([("Event", "QueueEntry"), ("Queue", q.name), ("Position", str(pos)),
                        ("Channel", ch.name), ("Uniqueid", ch.uniqueid),
                        ("CallerIDNum", ch.caller_num or "unknown"),
                        ("CallerIDName", ch.caller_name or "unknown"),
                        ("ConnectedLineNum", ch.conn_num or "unknown"),
                        ("ConnectedLineName", ch.conn_name or "unknown"),
                        ("Wait", str(int(now) - int(c.start))), ("Priority", str(c.prio)), *aid])
    out.append(list_complete(msg, "QueueStatusComplete", len(out) - 1))
    return out


@action("QueueSummary")
async def a_queuesummary(ctx: ActionContext, msg: AmiMessage) -> list[Fields]:
    core = ctx.core
    wanted = msg.get("Queue").strip()
    aid = [("ActionID", msg.action_id)] if msg.action_id else []
    out = [list_start(msg, "Queue summary will follow")]
    now = core.clock.now()
    for q in core.queues.queues.values():
        if wanted and q.name != wanted:
            continue
        statuses = [(m, core.queues.status(m)) for m in q.members.values()]
        logged = [(m, st) for m, st in statuses if st not in (UNAVAILABLE, INVALID)]
        avail = sum(1 for m, st in logged if st in (UNKNOWN, NOT_INUSE) and not m.paused)
        longest = max((int(now) - int(c.start) for c in q.callers), default=0)
        out.append([("Event", "QueueSummary"), ("Queue", q.name), ("LoggedIn", str(len(logged))),
                    ("Available", str(avail)), ("Callers", str(len(q.callers))),
                    ("HoldTime", str(q.stats.holdtime)), ("TalkTime", str(q.stats.talktime)),
                    ("LongestHoldTime", str(longest)), *aid])
    out.append(list_complete(msg, "QueueSummaryComplete", len(out) - 1))
    return out
