"""The RFC 4475 / RFC 5118 torture corpus sent to a live server over UDP.

Proves that the running server answers or drops every torture message the
way EXPECTED.tsv says for a proxy that has no route for the message yet, and
stays up throughout. Runs inside a private network namespace
(``unshare -n``), so nothing the messages name can ever be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import REPO_ROOT, require_tool

DRIVER = Path(__file__).parent / "netns" / "torture_driver.py"

#: The status line each message must get from a proxy with no routes (None: no answer).
#: Valid requests for foreign domains are refused as relaying (403); in-dialog
#: requests (To tag) that carry no Route of ours get 404; responses that match no
#: transaction are dropped. 100 Trying to an INVITE is not counted.
EXPECTED_STATUS: dict[str, int | None] = {
    "wsinv": 404,
    "intmeth": 501,
    "esc01": 403,
    "escnull": 403,
    "esc02": 501,
    "lwsdisp": 403,
    "longreq": 403,
    "dblreq": 403,
    "semiuri": 403,
    "transports": 403,
    "mpart01": 403,
    "unreason": None,
    "noreason": None,
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": None,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "baddate": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "baddn-derived": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 501,
    "bigcode": None,
    "badbranch": 400,
    "insuf": 400,
    "unkscm": 416,
    "novelsc": 416,
    "unksm2": 403,
    "bext01": 420,
    "invut": 403,
    "regaut01": 403,
    "multi01": 400,
    "mcl01": 400,
    "bcast": None,
    "zeromf": 483,
    "cparam01": 403,
    "cparam02": 403,
    "regescrt": 403,
    "sdp01": 403,
    "inv2543": 403,
    "test": None,
    "ipv6-good": 403,
    "ipv6-bad": 400,
    "port-ambiguous": 403,
    "port-unambiguous": 403,
    "via-received-param-with-delim": 404,
    "via-received-param-no-delim": 403,
    "ipv6-in-sdp": 403,
    "mult-ip-in-header": 404,
    "mult-ip-in-sdp": 403,
    "ipv4-mapped-ipv6": 403,
    "ipv6-bug-abnf-3-colons": 403,
    "ipv6-correct-abnf-2-colons": 403,
}

#: What each EXPECTED.tsv verdict allows a live answer to be.
VERDICT_ALLOWS: dict[str, Callable[[int | None], bool]] = {
    "valid": lambda status: status is None or status not in (400, 500),
    "valid-liberal": lambda status: status is None or status not in (400, 500),
    "invalid-parse": lambda status: status is None or (400 <= status < 600 and status != 500),
    "invalid-framing": lambda status: status == 400,
    "valid-parse-but-semantically-bad": lambda status: status != 500,
    "unreferenced": lambda status: status in (None, 400),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Run the driver once inside a private network namespace."""
    require_tool("unshare")
    require_tool("ip")
    out = tmp_path_factory.mktemp("torture") / "results.json"
    env = dict(os.environ, SIPAPP_NETNS="1")
    command = f"ip link set lo up && exec {sys.executable} {DRIVER} {out}"
    unshare = shutil.which("unshare")
    proc = subprocess.run(
        [str(unshare), "-n", "sh", "-c", command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-4000:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def _rows() -> list[list[str]]:
    text = (REPO_ROOT / "tests/data/torture/EXPECTED.tsv").read_text()
    return [line.split("\t") for line in text.splitlines()[1:]]


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_message_answered_as_expected(results: dict[str, dict[str, object]], name: str) -> None:
    """Each torture message gets its expected answer (or none) and the server stays up."""
    result = results[name]
    assert result["alive"], f"server did not answer the probe after {name}"
    replies = result["replies"]
    assert isinstance(replies, list)
    # A stateful proxy answers an INVITE with 100 Trying before anything else.
    statuses = [int(str(r["status_line"]).split()[1]) for r in replies]
    statuses = [s for s in statuses if s != 100]
    expected = EXPECTED_STATUS[name]
    if expected is None:
        assert statuses == [], f"{name}: expected no answer, got {replies}"
    else:
        assert statuses == [expected], f"{name}: expected one {expected}, got {replies}"


@pytest.mark.e2e
def test_expected_status_agrees_with_corpus_verdicts() -> None:
    """The table above covers every corpus message and fits its EXPECTED.tsv verdict."""
    rows = _rows()
    assert {row[0] for row in rows} | {"baddn-derived"} == set(EXPECTED_STATUS)
    for row in rows:
        name, verdict = row[0], row[2]
        assert VERDICT_ALLOWS[verdict](EXPECTED_STATUS[name]), (name, verdict)


@pytest.mark.e2e
def test_error_reasons_name_the_problem(results: dict[str, dict[str, object]]) -> None:
    """Every 400 carries a reason phrase that says what was wrong."""
    for name, result in results.items():
        if name.startswith("_"):
            continue
        replies = result["replies"]
        assert isinstance(replies, list)
        for reply in replies:
            line = str(reply["status_line"])
            if line.startswith("SIP/2.0 400"):
                assert line.startswith("SIP/2.0 400 Bad Request - "), (name, line)


@pytest.mark.e2e
def test_server_stayed_clean(results: dict[str, dict[str, object]]) -> None:
    """The server exits 0 on SIGTERM after the corpus and logged no traceback."""
    server = results["_server"]
    assert server["exit_code"] == 0, server["log"]
    assert "Traceback" not in str(server["log"]), server["log"]
