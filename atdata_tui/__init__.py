"""atdata_tui: the terminal UI (Textual) and the headless CLI on top of ``atdata_core``.

``atdata-tui`` (``atdata_tui.cli:main``) starts ``atdata_tui.app.AtdataApp``; with a subcommand it
runs headless. Importing this package imports nothing heavy: start-up time matters over SSH.
"""
