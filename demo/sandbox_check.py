"""`make sandbox-check SANDBOX=path [CRD=path]`: the demo stories in the real clients, in headless Chromium.

Starts the `make demo` stack on free ports (auth off, its own database), serves the built CDS Hooks sandbox
(`npm ci && npm run build` in a checkout of cds-hooks/sandbox) on a free loopback port, and drives it:

- every patient-view story: the cards the service answered are the story's, and the sandbox renders them;
- every story whose order the PAMA screen can pick: pick it, and the same;
- the feedback round trip: override with a reason as the sandbox sends it (stored, 200), accept a
  suggestion, and see both in `cds report` and /analytics, and the overridden card suppressed next time;
- what the sandbox does with our cards (suggestions, isRecommended, source.url, links, update-only PAMA);
- what a user sees when the sandbox is served over https and Chromium guards loopback.

With `--crd`, also the Da Vinci CRD Request Generator (`demo.crd_check`). Screenshots and a generated
record of what was seen (`observed.md`) go to `--out` (docs/screenshots). It is not part of `make test`:
it needs the built clients, which are third-party code kept outside the repository (/work/ext/).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo import sandbox_flows
from demo.browser import StaticSite, chromium
from demo.report import Check, write_report
from demo.run import ROOT, DemoError, port_is_free, start_stack


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return port if port_is_free(port) else free_port()


def build_dir(path: Path) -> Path:
    """A sandbox checkout (with `build/`) or its `build/` itself."""
    for candidate in (path / "build", path):
        if (candidate / "index.html").exists() and (candidate / "app.bundle.js").exists():
            return candidate
    raise DemoError(
        f"{path} holds no built sandbox (index.html and app.bundle.js): run npm ci && npm run build"
    )


def commit_of(path: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.sandbox_check", description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", type=Path, required=True, help="built cds-hooks/sandbox checkout")
    parser.add_argument("--crd", type=Path, help="built HL7-DaVinci/crd-request-generator checkout")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--only", help="comma-separated check groups: stories,pama,feedback,behaviour,https,crd"
    )
    args = parser.parse_args(argv)
    groups = set((args.only or "stories,pama,feedback,behaviour,https,crd").split(","))
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        print("error: needs Debian chromium and chromium-driver (apt-get install chromium chromium-driver)")
        return 2
    try:
        sandbox = build_dir(args.sandbox.resolve())
    except DemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("failed-*.png"):  # evidence of an earlier run's failures
        stale.unlink()
    work = Path(tempfile.mkdtemp(prefix="sandbox-check-"))
    started = time.monotonic()
    stack = start_stack(fhir_port=0, service_port=free_port(), state_dir=work / "demo")
    site = StaticSite(sandbox)
    driver = chromium(work / "profile")
    checks: list[Check] = []
    versions = {"CDS Hooks sandbox": commit_of(args.sandbox)}
    try:
        run = sandbox_flows.SandboxRun(stack, site, driver, args.out, work)
        if "stories" in groups:
            checks += run.patient_view_stories()
        if "pama" in groups:
            checks += run.pama_stories()
        if "behaviour" in groups:
            checks += run.behaviour()
        if "https" in groups:  # before the feedback round trip, which silences story 1's MRI card
            checks += run.https_loopback()
        if "feedback" in groups:
            checks += run.feedback_round_trip()
        if "crd" in groups and args.crd:
            from demo import crd_check  # local: only with --crd

            versions["Da Vinci CRD Request Generator"] = commit_of(args.crd)
            checks += crd_check.run(stack, args.crd.resolve(), args.out, work)
    finally:
        driver.quit()
        site.stop()
        stack.stop()
    report = write_report(args.out / "observed.md", checks, versions, time.monotonic() - started)
    print(report)
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)}/{len(checks)} checks passed; screenshots, observed.md: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
