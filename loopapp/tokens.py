"""``loop token create NAME`` / ``ls`` / ``rm NAME``: API tokens for scripts.

The tokens live in the library database, so these work whether or not the device runs, and
a running device sees a new or revoked token on its next request.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from libloop.errors import LoopError
from libloop.index import Library, TokenInfo
from loopapp.config import Config


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def format_tokens(tokens: list[TokenInfo]) -> str:
    """One line a token: name, created, last used (local time); a sentence when there are none."""
    if not tokens:
        return "no API tokens; make one with `loop token create NAME`"
    width = max(len(token.name) for token in tokens)
    return "\n".join(
        f"{token.name:<{width}}  created {_when(token.created)}  last used {_when(token.last_used)}"
        for token in tokens
    )


def run_token_command(args: argparse.Namespace, config: Config) -> int:
    """Run ``loop token ACTION``; raises LoopError with one sentence on failure."""
    with Library(config.data_dir) as library:
        if args.token_action == "create":
            secret = library.tokens.create(args.name)
            print(secret)
            print(
                f"loop token: created {args.name!r}; this is the only time it is shown. "
                f'Scripts send it as "Authorization: Bearer <token>".',
                file=sys.stderr,
            )
            return 0
        if args.token_action == "ls":
            tokens = library.tokens.list()
            if args.json:
                json.dump({"tokens": [token.to_dict() for token in tokens]}, sys.stdout, indent=2)
                sys.stdout.write("\n")
            else:
                print(format_tokens(tokens))
            return 0
        if args.token_action == "rm":
            library.tokens.revoke(args.name)
            print(f"revoked {args.name}")
            return 0
    raise LoopError(f"Unknown token action {args.token_action!r}; use create, ls or rm.")
