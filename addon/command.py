"""``blender -c emoflame animate …``: the console script's command inside Blender.

Registered with ``bpy.utils.register_cli_command`` (Blender 4.2+), so a render node with only a
Blender install runs the same ``animate`` as ``emoflame animate`` (same parser, same options,
same one-line errors and exit codes); ``blender -c emoflame --help`` prints its help.
"""

import bpy

COMMAND = "emoflame"
_handles = []


def run_command(argv: list[str]) -> int:
    """Run the ``emoflame`` console script with ``argv`` (the words after ``-c emoflame``).

    Returns the exit status: 0 on success or ``--help``, 2 for a usage error or an error the user
    can fix (its one-line message is on stderr).
    """
    from .. import cli

    try:
        return cli.main(list(argv), prog=f"blender -c {COMMAND}")
    except SystemExit as exc:  # argparse ends --help and usage errors this way
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def register_command() -> None:
    _handles.append(bpy.utils.register_cli_command(COMMAND, run_command))


def unregister_command() -> None:
    while _handles:
        bpy.utils.unregister_cli_command(_handles.pop())
