"""xmpp-shard-deploy: one shard plan -> N Prosody instances behind the proxy.

    xmpp-shard-deploy generate PLAN [--out DIR] [--force] [--cores N]
    xmpp-shard-deploy accounts PLAN [--out DIR] [--show]
    xmpp-shard-deploy certs    PLAN [--out DIR]
    xmpp-shard-deploy check    PLAN [--out DIR] [--cores N] [--proxy BIN]
    xmpp-shard-deploy run      [PLAN] [--out DIR] [--port N] [--free-ports] ...
    xmpp-shard-deploy where    PLAN ROOM [--tenant T]   (the room shard of ROOM, [jitsi] shards)

Exit codes: 0 fine, 1 a problem was found (listed on stderr), 2 bad usage or a bad plan.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from . import runner
from .generate import ACCOUNTS, MANIFEST, GenerateError, generate, read_passwords, render_files
from .plan import DEFAULT_PATHS, Plan, PlanError, expand, load_plan
from .certs import make_certs, missing_proxy_certs
from .prosody import ProsodyInstance, make_base_dir, require_prosody
from .tls import proxy_cert_dir, tls_profile

PROG = "xmpp-shard-deploy"


def _err(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)


def _load(args) -> Plan:
    return load_plan(args.plan, ncpu=getattr(args, "cores", None))


def _out_dir(args, plan: Plan) -> Path:
    if args.out:
        return Path(args.out).resolve()
    if plan.out:
        return Path(plan.out)
    raise PlanError(f"{plan.source}: [plan] out is not set: pass --out DIR")


def _generated_layout(args, plan: Plan):
    """The layout of an already generated OUT (its passwords), or an error naming the fix."""
    out = _out_dir(args, plan)
    if not (out / MANIFEST).exists():
        raise GenerateError(f"{out} has not been generated: run `{PROG} generate "
                            f"{args.plan} --out {out}` first")
    def missing() -> str:
        raise GenerateError(f"{out}/{ACCOUNTS} lacks accounts of this plan: run generate again")

    return expand(plan, out=out, ncpu=getattr(args, "cores", None), passwords=read_passwords(out),
                  password=missing)


# --------------------------------------------------------------------------------------------

def cmd_generate(args) -> int:
    plan = _load(args)
    out = _out_dir(args, plan)
    if args.target == "kubernetes":
        from .kubernetes import cmd_generate as generate_kubernetes
        return generate_kubernetes(args, plan, out)
    layout, res, notes = generate(plan, out, force=args.force, ncpu=args.cores)
    print((out / "REPORT.txt").read_text(), end="")
    summary = []
    for label, items in (("created", res.created), ("updated", res.updated),
                         ("overwritten (--force)", res.forced)):
        if items:
            summary.append(f"{label}: {len(items)}")
    print("generate: " + (", ".join(summary) if summary else "nothing changed")
          + f" ({len(res.unchanged)} unchanged)")
    for r in res.stale:
        print(f"generate: note: {out / r} is no longer part of the plan (left in place)")
    for n in notes:
        print(f"generate: note: {n}")
    return 0


def cmd_accounts(args) -> int:
    plan = _load(args)
    require_prosody()
    layout = _generated_layout(args, plan)
    n = 0
    for spec in layout.instances:
        inst = ProsodyInstance(spec, layout.out / "prosody")
        inst.make_dirs()
        inst.ensure_accounts(spec.accounts)
        n += len(spec.accounts)
        print(f"accounts: {spec.name}: {len(spec.accounts)} account(s)"
              + (": " + ", ".join(a.jid for a in spec.accounts) if spec.accounts else ""))
    print(f"accounts: {n} registered with prosodyctl; passwords in {layout.out / ACCOUNTS} (0600)")
    if args.show:
        for a in sorted(layout.accounts, key=lambda a: a.jid):
            print(f"{a.jid} {a.password}")
    return 0


def cmd_certs(args) -> int:
    plan = _load(args)
    layout = _generated_layout(args, plan)
    res = make_certs(layout)
    where = (f" for the proxy ([plan] tls = \"terminate\") in {proxy_cert_dir(plan, layout.out)}"
             if tls_profile(plan).terminate else " for the Prosody instances")
    print(f"certs: mode {plan.certs.mode}{where}: {len(res.made)} made, {len(res.kept)} kept")
    for p in res.made:
        print(f"  made {p}")
    if res.ca:
        print(f"certs: CA certificate {res.ca}: to have components trust it instead of "
              f"disabling verification:\n  cp {res.ca} /usr/local/share/ca-certificates/xmpp-shard.crt"
              f" && update-ca-certificates")
    if res.missing:
        for p in res.missing:
            _err(f"missing {p} (and its .key)")
        return 1
    return 0


def find_proxy_bin(given: Optional[str]) -> Optional[Path]:
    if given:
        return Path(given)
    p = runner.default_proxy_bin()
    return p if p.exists() else None


def cmd_check(args) -> int:
    try:
        plan = _load(args)
    except PlanError as e:
        for line in e.problems:
            print(f"error: {line}", file=sys.stderr)
        print(f"check: {len(e.problems)} problem(s) in the plan", file=sys.stderr)
        return 1
    problems: list[str] = []
    ncpu = args.cores or plan.cores or len(os.sched_getaffinity(0))
    if plan.instances > ncpu:
        print(f"check: note: {plan.instances} instances on {ncpu} cores: some share a core")
    print(f"check: plan {plan.source}: {plan.instances} instances, {len(plan.hosts)} hosts: ok")
    from .jitsi import client_proxy_found
    if plan.jitsi is not None and plan.jitsi.focus_component and not client_proxy_found(plan.jitsi):
        print(f"check: note: [jitsi] focus_component: mod_client_proxy is not in "
              f"{plan.jitsi.prosody_plugins} here (jitsi-meet-prosody): Prosody on this machine "
              f"would log that it cannot load focus.{plan.jitsi.domain}; set [jitsi] "
              f"prosody_plugins, or focus_component = false")

    out = Path(args.out).resolve() if args.out else (Path(plan.out) if plan.out else None)
    temp = None
    if out is None or not (out / MANIFEST).exists():
        temp = make_base_dir("xs-check-")
        print(f"check: {out or 'the plan'} is not generated: checking a rendering in {temp} "
              f"(data, log and pidfile kept under it)")
        out_dir = temp
        plan.paths = dict(DEFAULT_PATHS)
        for ip in plan.instance_plans.values():
            ip.paths = {}
        try:
            layout, _res, _notes = generate(plan, out_dir, ncpu=args.cores)
            if tls_profile(plan).terminate and plan.certs.mode != "existing":
                # The proxy's --check loads the certificates: make throwaway ones (a CA of the
                # plan's [certs] ca_cert is only read).
                make_certs(layout)
        except (GenerateError, RuntimeError) as e:
            problems.append(str(e))
            layout = None
    else:
        out_dir = out
        layout = _generated_layout(args, plan)
        stale = []
        files = render_files(layout)
        for f in files:
            p = out / f.rel
            if not p.exists() or p.read_text() != f.content:
                stale.append(f.rel)
        if stale:
            problems.append(f"{out} is out of date with the plan ({', '.join(stale[:5])}"
                            f"{' ...' if len(stale) > 5 else ''}): run generate")
    missing: list[str] = []
    if layout is not None and tls_profile(plan).terminate:
        missing = missing_proxy_certs(layout)
        if missing:
            key = "[certs] dir" if plan.certs.mode == "existing" else "[plan] tls"
            fix = ("put them there" if plan.certs.mode == "existing" else
                   f"run `{PROG} certs {args.plan} --out {out_dir}`")
            problems.append(f"{key}: tls = \"terminate\" but the proxy's certificates are missing "
                            f"({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}): {fix}")
        else:
            print(f"check: tls = \"terminate\": {len(tls_profile(plan).proxy_certificates)} "
                  f"certificate(s) for the proxy: ok")
    try:
        if layout is not None:
            try:
                require_prosody()
                for spec in layout.instances:
                    inst = ProsodyInstance(spec, out_dir / "prosody")
                    ok, text = inst.check_config()
                    if ok:
                        print(f"check: prosodyctl check config {inst.config_path}: ok")
                    else:
                        problems.append(f"prosodyctl check config {inst.config_path}:\n{text}")
            except RuntimeError as e:
                problems.append(str(e))
            pbin = find_proxy_bin(args.proxy)
            if pbin is None:
                print("check: note: xmpp-shard-proxy not found: the proxy config was not checked")
            elif missing:
                print("check: note: the proxy config was not checked (its certificates are missing)")
            else:
                r = subprocess.run([str(pbin), "--config", str(out_dir / "proxy.toml"), "--check"],
                                   capture_output=True, text=True, timeout=30)
                if r.returncode == 0:
                    print(f"check: {pbin} --check {out_dir / 'proxy.toml'}: ok")
                else:
                    problems.append(f"{pbin} --check {out_dir / 'proxy.toml'}:\n{r.stdout}{r.stderr}")
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print("check: " + (f"{len(problems)} problem(s)" if problems else "all good"),
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def cmd_where(args) -> int:
    from .jitsi import room_key, room_shard, shard_backends
    plan = _load(args)
    jp = plan.jitsi
    if jp is None or not jp.shards:
        raise PlanError(f"{plan.source}: [jitsi] shards is not set: the plan has no room shards")
    names = plan.instance_names()
    for room in args.room:
        k = room_shard(room, names, jp.shards, args.tenant or "")
        nodes = [jp.vnode(v) for v in range(jp.visitors) if jp.visitor_shard(v) == k]
        print(f"{room_key(room, args.tenant or '')}: {names[k]} (instance {k}, HTTP backend "
              f"{shard_backends(names, jp.shards)[k]} 127.0.0.1:{jp.shard_http_port + k})"
              + (f"; its visitors: {', '.join(nodes)} (?vnode=)" if nodes else ""))
    return 0


def cmd_run(args) -> int:
    return runner.run(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG, description="One shard plan -> N Prosody instances, each pinned to its own "
                               "core, behind xmpp-shard-proxy. See deploy/README.md.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def common(p, cores=True):
        p.add_argument("plan", help="the shard plan (TOML)")
        p.add_argument("--out", help="output directory (default: the plan's [plan] out)")
        if cores:
            p.add_argument("--cores", type=int, default=None,
                           help="CPU cores of the target machine (default: [plan] cores, else this machine's)")

    p = sub.add_parser("generate", help="write every config, unit and snippet (idempotent)")
    common(p)
    p.add_argument("--force", action="store_true",
                   help="overwrite files generate did not write (or that were edited since)")
    p.add_argument("--target", choices=("systemd", "kubernetes"), default="systemd",
                   help="systemd units and configs (default), or Kubernetes manifests")
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("accounts", help="create the service users with prosodyctl")
    common(p, cores=False)
    p.add_argument("--show", action="store_true", help="print every jid and password")
    p.set_defaults(fn=cmd_accounts)

    p = sub.add_parser("certs", help="certificates for every domain (self-signed, CA, existing)")
    common(p, cores=False)
    p.set_defaults(fn=cmd_certs)

    p = sub.add_parser("check", help="validate the plan; prosodyctl check config per instance")
    common(p)
    p.add_argument("--proxy", default=None, help="proxy binary for --check (default: found)")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("where", help="the room shard a room lands on ([jitsi] shards)")
    p.add_argument("plan", help="the shard plan (TOML)")
    p.add_argument("room", nargs="+", help="room name (or TENANT/room)")
    p.add_argument("--tenant", default="", help="the room's tenant (/TENANT/xmpp-websocket)")
    p.set_defaults(fn=cmd_where)

    p = sub.add_parser("run", help="run the plan locally in the foreground (no systemd)")
    runner.add_arguments(p)
    p.set_defaults(fn=cmd_run)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.fn(args)
    except PlanError as e:
        for line in e.problems:
            print(f"{PROG}: {line}", file=sys.stderr)
        return 2
    except BrokenPipeError:             # e.g. `generate ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (GenerateError, RuntimeError, OSError, ValueError) as e:
        _err(str(e))
        return 1
