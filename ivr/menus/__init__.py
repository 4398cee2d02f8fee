"""Speech-first IVR menus: configuration (``model``, ``check``), the engine that walks a menu
against a ``CallIO`` (``engine``, with ``status`` lookup and ``survey``), the live ``CallIO``
over async AGI (``live_io``), the wait announcement (``waiting``) and a scripted harness for
tests (``harness``). ``ASTERISK.md`` lists what a real Asterisk needs for them.

Nothing here is imported by ``ivr.menus`` itself, so loading the configuration (which uses
``model`` and ``check``) stays light.
"""
