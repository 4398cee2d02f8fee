"""The console in a real browser: Debian's headless Chromium driven by Playwright (no browser
download), against pbxsim and the service over real TCP.

``HOTLINE_SCREENSHOTS=docs python3 -m pytest tests/test_console_browser.py`` refreshes the
README's screenshots; otherwise they go to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cases.schemas import CallStart
from ivr.menus.model import SurveyCallConfig
from pbxsim import CitizenScript
from speech.engine import SpeechEngine
from tests.test_console_fixtures import ConsoleRig, caller, console_rig, wait_for
from tests.test_speech_call import PHRASES, wav_of

CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
XSS = ('<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
       '물이 안 나와요 & "quotes"')

if os.environ.get("CI"):
    # In CI a missing browser or driver is a failure, not a skip.
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"browser tests need Debian's chromium at {CHROMIUM} (.ci/install)")
    import playwright.async_api  # noqa: F401 - raises when the test extra is missing
playwright_api = pytest.importorskip("playwright.async_api",
                                     reason="playwright is not installed")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def _shots(tmp_path: Path) -> Path:
    d = Path(os.environ.get("HOTLINE_SCREENSHOTS", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            await b.close()


async def _login(browser: object, cr: ConsoleRig, name: str, password: str,
                 home: str) -> object:
    # The screen in the centre's time zone, as at the centre (the board's clock and plots).
    page = await browser.new_page(  # type: ignore[attr-defined]
        viewport={"width": 1366, "height": 900}, timezone_id=cr.rig.config.service.timezone)
    page.on("dialog", lambda d: asyncio.ensure_future(d.dismiss()))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.hotline_errors = errors
    await page.goto(cr.base + "/login")
    await page.fill("#username", name)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_url(cr.base + home)
    return page


async def test_screen_pop_with_transcript_as_text_and_the_form_saves(
        tmp_path: Path, browser: object) -> None:
    async with console_rig(tmp_path) as cr:
        r = cr.rig
        store = r.service.store
        # An earlier case from the same number: the pop lists it.
        old = await store.open_call_case(CallStart(
            node=r.config.service.node, call_id="earlier-1", caller_number="13800138000"))
        await store.update_call_case(r.config.service.node, "earlier-1", topic="water",
                                     description="停水三天 (earlier)")
        # The phone rings for 1 s (10 simulated: under the queue's 15 s ring timeout), long
        # enough to see the ringing pop.
        await r.add_agent(1001, "water", talk_s=600.0, answer_s=10.0)
        page = await _login(browser, cr, "agent1001", "pw", "/operator")
        p = page  # type: ignore[assignment]
        await p.wait_for_selector("#conn.on")
        await p.wait_for_selector("#agent-state.on")

        call = await r.sim.place_call(caller("1", "13800138000", key_delay_s=3.0))
        # What the caller "said" (speech is off here): set before the call reaches a queue.
        await wait_for(lambda: call.ivr_uniqueid in r.service.calls.sessions)
        r.service.calls.sessions[call.ivr_uniqueid].state.transcript = XSS

        await p.wait_for_selector("#pop-phase.phase-ringing")
        await p.wait_for_selector("#pop-phase.phase-connected")
        assert await p.text_content("#pop-transcript") == XSS
        assert await p.evaluate("window.__xss") is None
        assert await p.eval_on_selector("#pop-transcript", "e => e.children.length") == 0
        assert await p.text_content("#pop-caller") == "138****8000"
        assert await p.text_content("#pop-topic") == "water"
        await p.wait_for_selector(f"#pop-history li:has-text('{old.number}')")
        number = (await p.text_content("#form-number")) or ""
        await p.wait_for_function(
            "() => document.getElementById('form-number').textContent.length > 0")
        number = (await p.text_content("#form-number")) or ""
        assert number and number != old.number

        await p.select_option("#f-case_type", "complaint")
        await p.select_option("#f-urgency", "urgent")
        await p.fill("#f-district", "西湖区")
        await p.fill("#f-description", "水管爆裂，<b>整栋楼</b>停水")
        await p.click("#save-btn")
        await p.wait_for_selector("#save-result:has-text('saved')")
        case = await store.get(number)
        assert case is not None
        assert case.description == "水管爆裂，<b>整栋楼</b>停水"
        assert str(case.case_type) == "complaint" and case.district == "西湖区"
        # A supervisor corrects the district meanwhile: the operator's next save (notes
        # only) keeps it, and the form then shows it.
        await store.edit_case(number, {"district": "黄浦区"}, actor="web:supervisor")
        await p.fill("#f-description", "水管爆裂，整栋楼停水，已通知物业")
        await p.click("#save-btn")
        await p.wait_for_selector("#save-result:has-text('version')")
        await p.wait_for_function(
            "() => document.getElementById('f-district').value === '黄浦区'")
        case = await store.get(number)
        assert case is not None and (case.district, case.description) == (
            "黄浦区", "水管爆裂，整栋楼停水，已通知物业")
        # ...and rewrites of the same field are refused on the screen, not overwritten.
        await store.edit_case(number, {"description": "由班长补充"}, actor="web:supervisor")
        await p.fill("#f-description", "覆盖")
        await p.click("#save-btn")
        await p.wait_for_selector("#save-result:has-text('not saved')")
        said = (await p.text_content("#save-result")) or ""
        assert "description" in said and "由班长补充" in said
        case = await store.get(number)
        assert case is not None and case.description == "由班长补充"
        # The operator's text is still on the form; saving again replaces theirs knowingly.
        assert await p.input_value("#f-description") == "覆盖"
        await p.click("#save-btn")
        await p.wait_for_selector("#save-result:has-text('version')")
        case = await store.get(number)
        assert case is not None and case.description == "覆盖"
        await p.screenshot(path=str(_shots(tmp_path) / "operator.png"), full_page=True)
        # No CSP violation, no script error (the refused save's 409 is the browser's note).
        assert [e for e in p.hotline_errors if "409 (Conflict)" not in e] == []
        call.hangup()


async def test_a_spoken_request_pops_with_what_vosk_heard(tmp_path: Path,
                                                          browser: object) -> None:
    """The transcript on the screen is the service's own: espeak-ng Korean spoken by the
    pbxsim citizen over AudioSocket, heard by Vosk, routed by its topic."""
    engine = SpeechEngine()
    await engine.load()
    await engine.load(fast=True)
    try:
        async with console_rig(tmp_path, speed=1.0, engine=engine, speech=True) as cr:
            r = cr.rig
            await r.add_agent(1001, "energy", talk_s=600.0, answer_s=1.0)
            page = await _login(browser, cr, "agent1001", "pw", "/operator")
            p = page  # type: ignore[assignment]
            await p.wait_for_selector("#conn.on")
            wav = wav_of(PHRASES["energy"], tmp_path / "energy.wav")
            call = await r.sim.place_call(CitizenScript(speech_wav=wav, keys=[],
                                                        caller_num="13900139000"))
            await p.wait_for_selector("#pop-phase.phase-connected", timeout=60_000)
            session = r.service.calls.sessions[call.ivr_uniqueid]
            heard = session.state.transcript or session.state.live_transcript
            assert heard     # Vosk's words for espeak's voice (not always the phrase)
            assert await p.text_content("#pop-transcript") == heard
            assert await p.text_content("#pop-topic") == "energy"
            assert await p.text_content("#pop-caller") == "139****9000"
            call.hangup()
    finally:
        engine.close()


async def test_admin_board_changes_reach_pbxsim(tmp_path: Path, browser: object) -> None:
    async with console_rig(tmp_path) as cr:
        r = cr.rig
        await r.add_agent(1001, "water", talk_s=30.0, answer_s=0.5)
        await r.add_agent(1002, "water", talk_s=30.0, answer_s=0.5)
        await r.add_agent(1003, "hotline_general", talk_s=30.0, answer_s=0.5)
        for i in range(3):     # traffic for the board and its plots
            await r.sim.place_call(caller("1", f"1380013{i:04d}", key_delay_s=0.2))
        page = await _login(browser, cr, "supervisor", "supervisor", "/admin")
        p = page  # type: ignore[assignment]
        await p.wait_for_selector("#conn.on")
        await p.wait_for_selector("#group-water tr[data-member='agent1001']")

        # Add an agent to a group from the form: pbxsim has it.
        await p.select_option("#add-queue", "energy")
        await p.fill("#add-member", "agent2001")
        await p.fill("#add-interface", "Local/2001@agents/n")
        await p.fill("#add-penalty", "2")
        await p.click("#add-form button[type=submit]")

        def energy_member() -> object:
            snap = r.sim.queue_snapshot()["energy"]
            return next((m for m in snap.members if m.name == "agent2001"), None)

        await wait_for(lambda: energy_member() is not None)
        row = "#group-energy tr[data-member='agent2001']"
        await p.wait_for_selector(row)
        # Penalty and pause from its row.
        await p.fill(f"{row} input", "4")
        await p.click(f"{row} button:has-text('set')")
        await wait_for(lambda: getattr(energy_member(), "penalty", 0) == 4)
        await p.click(f"{row} button:has-text('pause')")
        await wait_for(lambda: getattr(energy_member(), "paused", False))
        await p.wait_for_selector(f"{row} .badge.paused")

        # Routing parameters from the form, applied to the router.
        await p.fill("#p-margin_s", "30")
        await p.click("#params-apply")
        await p.wait_for_selector("#params-result:has-text('margin_s')")
        assert r.service.router.policy.params.margin_s == 30  # type: ignore[union-attr]
        await p.wait_for_selector("#audit-rows tr:has-text('routing.params')")
        # The water group's plot has a bar for this quarter hour's calls.
        await p.wait_for_selector("#group-water .plot rect.bar")
        await p.screenshot(path=str(_shots(tmp_path) / "admin.png"), full_page=True)
        assert p.hotline_errors == []


async def test_callbacks_owed_are_settled_from_the_admin_page(
        tmp_path: Path, browser: object) -> None:
    # Calling hours off: the test runs on the real clock, at any hour (at night a callback
    # owed 50 minutes ago is rightly due the next morning, not overdue).
    async with console_rig(tmp_path, survey=SurveyCallConfig(hours=[])) as cr:
        store = cr.rig.service.store
        numbers = []
        for i, ago in enumerate((50, 10)):   # the first overdue, the second due in 20 min
            case = await store.open_call_case(CallStart(call_id=f"cb-{i}",
                                                        caller_number=f"1390000{i:04d}"))
            await store.finish_call("default", f"cb-{i}", "abandoned",
                                    datetime.now(UTC) - timedelta(minutes=ago))
            numbers.append(case.number)
        page = await _login(browser, cr, "supervisor", "supervisor", "/admin")
        p = page  # type: ignore[assignment]
        rows = "#callback-rows tr"
        await p.wait_for_selector(f"{rows}[data-case='{numbers[1]}']")
        assert await p.locator(rows).evaluate_all("rs => rs.map(r => r.dataset.case)") \
            == numbers
        assert await p.locator(f"{rows}.overdue").count() == 1
        assert await p.text_content("#callbacks-count") == "2 owed, 1 overdue"
        first = f"{rows}[data-case='{numbers[0]}']"
        assert await p.text_content(f"{first} td:nth-child(3) span") == "139****0000"
        await p.screenshot(path=str(_shots(tmp_path) / "admin-callbacks.png"), full_page=True)
        # No answer: tried once, due again later, so now after the other one.
        await p.click(f"{first} button:has-text('no answer')")
        await p.wait_for_selector(f"{rows}:last-child[data-case='{numbers[0]}']")
        assert await p.text_content(f"{first} td:nth-child(6)") == "1"
        await p.wait_for_selector("#callbacks-count:has-text('2 owed, 0 overdue')")
        # Reached: off the list, and on the case's record.
        await p.click(f"{first} button:has-text('reached')")
        await p.wait_for_selector(first, state="detached")
        await p.wait_for_selector("#callbacks-count:has-text('1 owed, 0 overdue')")
        kinds = [e.kind for e in await store.timeline(numbers[0])]
        assert kinds[-2:] == ["callback_attempt", "callback_done"]

        # The operator's page shows the count.
        op = await _login(browser, cr, "operator", "operator", "/operator")
        await op.wait_for_selector("#callbacks-owed:has-text('回拨 1 owed')")  # type: ignore[attr-defined]
        assert p.hotline_errors == [] and op.hotline_errors == []  # type: ignore[attr-defined]
