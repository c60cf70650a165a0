"""``kaskad flow validate|import|export``."""

from __future__ import annotations

import sys
from pathlib import Path


def _read(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def flow_validate(args) -> int:
    from kaskad.config import Settings
    from kaskad.flow.validate import validate
    from kaskad.plugins.manager import load_registry

    registry = load_registry(Settings.from_env().load_plugins)
    failed = False
    for name in args.files:
        try:
            data = _read(name)
        except OSError as exc:
            print(f"{name}: -: -: cannot read: {exc.strerror or exc}")
            failed = True
            continue
        _, errors = validate(data, registry)
        for e in errors:
            print(f"{name}: {e.node or '-'}: {e.path or '-'}: {e.message}")
        if errors:
            failed = True
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


def flow_import(args) -> int:
    from kaskad.flow import service
    from kaskad.runtime import Runtime
    from kaskad.store.engine import transaction

    runtime = Runtime.create()
    failed = False
    try:
        for name in args.files:
            try:
                data = _read(name)
                with transaction(runtime.sessions) as session:
                    result = service.save(session, runtime.registry, data, author="cli")
                    if args.publish and result.valid:
                        result.version = service.publish(session, runtime.registry, result.key, result.version, author="cli")
                        result.status = "published"
            except OSError as exc:
                print(f"{name}: -: -: cannot read: {exc.strerror or exc}", file=sys.stderr)
                failed = True
                continue
            except service.FlowServiceError as exc:
                for e in exc.errors or []:
                    print(f"{name}: {e.node or '-'}: {e.path or '-'}: {e.message}", file=sys.stderr)
                if not exc.errors:
                    print(f"{name}: {exc}", file=sys.stderr)
                failed = True
                continue
            for e in result.errors:
                print(f"{name}: {e.node or '-'}: {e.path or '-'}: {e.message}", file=sys.stderr)
            if args.publish and not result.valid:
                failed = True
                print(f"{name}: {result.key} version {result.version} saved as an invalid draft, not published", file=sys.stderr)
            else:
                print(f"{name}: {result.key} version {result.version} {result.status}{'' if result.valid else ' (invalid)'}")
    finally:
        runtime.close()
    return 1 if failed else 0


def flow_export(args) -> int:
    from kaskad.flow import service
    from kaskad.runtime import Runtime

    runtime = Runtime.create()
    try:
        with runtime.sessions() as session:
            data = service.export(session, args.key, args.version)
    except service.FlowNotFound as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        runtime.close()
    if args.output and args.output != "-":
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def add_commands(sub) -> None:
    flow = sub.add_parser("flow", help="validate, import and export flow JSON").add_subparsers(dest="flow_command", metavar="ACTION")
    v = flow.add_parser("validate", help="validate flow files offline with the installed plugins (exit 1 on any error)")
    v.add_argument("files", nargs="+", metavar="FILE", help="flow JSON files ('-' reads stdin)")
    v.set_defaults(func=flow_validate)
    i = flow.add_parser("import", help="save flow files as drafts in the configured database")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--publish", action="store_true", help="publish each flow after saving it (invalid ones are not)")
    i.set_defaults(func=flow_import)
    e = flow.add_parser("export", help="print a flow's canonical JSON")
    e.add_argument("key")
    e.add_argument("--version", type=int, help="version number (default: the newest, draft or not)")
    e.add_argument("-o", "--output", help="write to this file instead of stdout")
    e.set_defaults(func=flow_export)
