"""Widgets of the TUI: the virtual entry list, breadcrumbs and the status bar (sample views live in
``widgets.sample_views``, written with the preview screen)."""
