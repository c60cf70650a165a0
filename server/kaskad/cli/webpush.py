"""``kaskad webpush keys``: make the VAPID key pair web push is signed with."""

from __future__ import annotations

import sys

from kaskad.config import Settings


def webpush_keys(args) -> int:
    from kaskad_channels.webpush import vapid  # the built-in plugin; the CLI names it like a user would

    settings = Settings.from_env()
    key = None if args.new else vapid.stored(settings.home)
    if key is None:
        key = vapid.generate()
        path = vapid.store(settings.home, key)
        print(f"stored a new VAPID key in {path}", file=sys.stderr)
    print(f"applicationServerKey (public): {vapid.application_server_key(key)}")
    if args.show_private:
        print(f"KASKAD_WEBPUSH_VAPID_PRIVATE_KEY={vapid.private_raw(key)}")
    return 0


def add_commands(sub) -> None:
    wp = sub.add_parser("webpush", help="web push").add_subparsers(dest="webpush_command", metavar="ACTION")
    keys = wp.add_parser("keys", help="create (once) and print the VAPID key pair")
    keys.add_argument("--new", action="store_true", help="replace the stored key (existing subscriptions stop working)")
    keys.add_argument("--show-private", action="store_true", help="also print the private key, for an environment variable")
    keys.set_defaults(func=webpush_keys)
