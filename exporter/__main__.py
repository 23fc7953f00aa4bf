"""``python -m exporter`` and the ``maxcompute-exporter`` command."""

import signal


def run() -> None:
    """Ignore SIGHUP, then run the command line.

    SIGHUP's default action ends the process. Until the reload handler is in place (after the
    imports, the first load of the configuration and the listening socket), a SIGHUP from
    ``systemctl reload`` or a ConfigMap watcher is ignored instead of killing the exporter
    without a log line. Nothing is imported before this: that alone takes a few hundred ms.
    """
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from exporter.cli import main

    main()


if __name__ == "__main__":
    run()
