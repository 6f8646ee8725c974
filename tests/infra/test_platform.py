"""``botkiln up`` and ``EmbeddedPlatform``: the whole platform on embedded services, chatted with for real.

The CLI runs as a subprocess with its stdin piped, as a newcomer's terminal would
drive it; the restart runs in-process to look at the handles. Each test starts
its own PostgreSQL and Redis under a temporary state directory, on a unix socket
and a free loopback port, so the machine's own services are never touched.
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from botkiln.infra.db import create_pool, deployments, specs
from botkiln.infra.platform import EmbeddedPlatform


def running(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (an orphan nobody reaps in a container) does not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[0] != "Z"


BOTKILN = Path(sys.executable).with_name("botkiln")
HELP = "I'm the Harbour Museum quiz bot. Send /quiz to play, /restart to start over, /score for your last score."
READY = "Type a message or /command; type a button's label to press it; /quit stops everything."


class Lines:
    """The lines a process prints, read by a thread so that waiting for one can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.items: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.items.put(line)
        self.items.put(None)

    def until(self, last: str, within: float) -> list[str]:
        """Lines up to and including ``last``."""
        seen: list[str] = []
        deadline = time.monotonic() + within
        while not seen or seen[-1] != last:
            line = self.items.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"the process ended before printing {last!r}; it printed {seen}"
            seen.append(line.rstrip("\n"))
        return seen

    def rest(self, within: float) -> list[str]:
        """Every line until the end of output."""
        seen: list[str] = []
        while (line := self.items.get(timeout=within)) is not None:
            seen.append(line.rstrip("\n"))
        return seen


def test_botkiln_up_chats_over_stdin_with_the_deployed_faq_bot_and_leaves_no_process_behind(tmp_path: Path) -> None:
    # Given `botkiln up` on a fresh state directory, driven through a pipe
    state = tmp_path / "state"
    argv = [str(BOTKILN), "up", "--example", "faq", "--state", str(state), "--port", "0", "--standin-port", "0"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    with (
        (tmp_path / "stderr.txt").open("w+", encoding="utf-8") as err,
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env) as proc,
    ):
        try:
            lines = Lines(proc)
            # When it says it is up
            banner = lines.until(READY, within=60)
            # Then the banner names the bot, the API and the HTTP way to chat, and the services run
            assert banner[0].startswith("Botkiln is up in ")
            assert any(line.startswith("  bot               faq-bot (@faq_bot), revision ") for line in banner)
            api = next(line.split()[2] for line in banner if line.startswith("  API (GraphQL)"))
            assert httpx.get(api.replace("/graphql", "/healthz")).json() == {
                "ok": True,
                "postgres": True,
                "redis": True,
            }
            curl = next(line for line in banner if line.startswith("  chat over HTTP    curl -s http://127.0.0.1:"))
            assert curl.endswith('/_user/faq_bot/say -d \'{"text": "/start"}\'')
            redis_pid = int((state / "redis" / "redis-server.pid").read_text())
            postgres_pid = int((state / "postgres" / "postmaster.pid").read_text().split()[0])
            assert running(redis_pid) and running(postgres_pid)
            assert (state / "admin.txt").stat().st_mode & 0o777 == 0o600

            # When the user types four messages and /quit
            assert proc.stdin is not None
            proc.stdin.write("/start\nWhen are you open?\nWhere are you?\nprices\n/quit\n")
            proc.stdin.close()
            transcript = lines.rest(within=60)
            code = proc.wait(timeout=30)
            err.seek(0)
            stderr = err.read()
        finally:
            if proc.poll() is None:  # a failed assertion: stop it the clean way, then for sure
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    # Then every reply came through the webhook, the executor and the stand-in, in order
    assert transcript == [
        "you> /start",
        "bot> Hi User 1001! I'm the Bean There helper. Ask me about opening hours, wifi, prices or where we are.",
        "     [Opening hours] [Wifi]",
        "     [Prices] [Where are you?]",
        "you> When are you open?",
        "bot> We're open Mon–Fri 7:30–19:00, Sat–Sun 9:00–17:00.",
        "you> Where are you?",
        "bot> Bean There, Kastanienallee 12, Berlin.",
        "     [Open the map -> https://maps.example.com/?q=Bean+There]",
        "you> prices",
        "bot> [photo: https://cdn.beanthere.example/menu.jpg] Our menu",
        "bot> Espresso 2.20 €, cappuccino 3.10 €, filter 2.80 €.",
        "you> /quit",
    ]
    # And /quit stopped everything cleanly: exit 0, Redis and PostgreSQL gone
    assert code == 0, stderr
    assert stderr.endswith("Stopping ...\nStopped.\n"), stderr
    assert not running(redis_pid) and not running(postgres_pid)
    assert not (state / "redis" / "redis-server.pid").exists()


def _history(database_url: str, bot_id: str) -> tuple[int, int]:
    """(spec versions, deployments) of ``bot_id``."""

    async def read() -> tuple[int, int]:
        pool = await create_pool(database_url, min_size=1, max_size=1)
        try:
            return await specs.latest_version(pool, bot_id), len(await deployments.list_deployments(pool, bot_id))
        finally:
            await pool.close()

    return asyncio.run(read())


def test_a_restart_on_the_same_state_reuses_the_bot_and_its_chats_and_buttons_still_work(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # Given the quiz bot, played up to its second question (inline buttons pressed by their labels)
    with EmbeddedPlatform(state, example="quiz", api_port=0, standin_port=0) as first:
        assert first.admin_password is not None and first.bot_id == "quiz-bot"
        assert first.say("/start", chat_id=7) == [
            "Ahoy User 7! Four questions about life at sea — every right answer scores a point. Ready?\n"
            "[Start the quiz]\n[Museum tickets -> https://harbourmuseum.example/tickets]"
        ]
        assert first.say("Start the quiz", chat_id=7) == [
            "1/4. Which side of a ship is port?\n[Right] [Left] [The back]"
        ]
        assert first.say("left", chat_id=7)[0] == "Correct! Score: 1"
        revision, token = first.rev_hash, first.token
    assert (state / "admin.txt").read_text() == f"email: admin@localhost\npassword: {first.admin_password}\n"

    # When the platform starts again on the same state directory
    with EmbeddedPlatform(state, example="quiz", api_port=0, standin_port=0) as second:
        # Then the same bot and revision serve, under the token the new stand-in issued, with no new deploy
        assert second.admin_password is None
        assert second.rev_hash == revision and second.token != token
        assert second.standin.calls(second.bot, "setWebhook")[0].params["url"] == f"{second.api_url}/wh/quiz-bot"
        assert _history(str(second.settings.database_url), "quiz-bot") == (1, 1)
        # And the chat's state survived: the bot still waits for an answer to question 2
        question = (
            "2/4. What does a lighthouse's own pattern of flashes tell sailors?\n"
            "[The water depth]\n[The time of night]\n[Which lighthouse they are looking at]"
        )
        answer = "Which lighthouse they are looking at"
        assert second.say(answer, chat_id=7) == ["Please answer with the buttons under the question.", question]
        assert second.say(answer, chat_id=7) == [
            "Correct! Score: 2", "3/4. One knot is one nautical mile per…\n[hour] [minute] [watch]"
        ]  # fmt: skip
        # And the HTTP user route answers the same way
        reply = httpx.post(f"{second.standin_url}/_user/quiz_bot/say", json={"text": "/help", "chat_id": 8}).json()
        assert reply == {"ok": True, "replies": [HELP]}


def test_the_example_bots_api_calls_are_answered_from_its_fixture(tmp_path: Path) -> None:
    from botkiln.infra.http_api import HttpApi
    from botkiln.infra.platform import EmbeddedPlatform
    from botkiln.workers.active import ActiveBot

    platform = EmbeddedPlatform(tmp_path / "state", example="lead_capture")
    spec = platform.spec
    example = ActiveBot(platform.bot_id, "a" * 64, spec, "", "1:x")
    api = platform._api_for(example)
    request = {
        "method": "POST", "url": "https://crm.example.com/api/v1/leads", "headers": {}, "body": {},
        "timeoutMs": 1000, "retries": 0, "backoffMs": 0, "maxResponseBytes": 65536,
    }  # fmt: skip
    first = api.perform(request)  # type: ignore[arg-type]
    assert first["ok"] and first["body"]["id"] == "PP-2026-0142"
    assert platform._api_for(example) is api  # one scripted sequence per revision, across updates
    assert api.perform(request)["status"] == 503  # type: ignore[arg-type]
    other = ActiveBot("someone-else", "b" * 64, spec, "", "2:y")
    assert isinstance(platform._api_for(other), HttpApi)
