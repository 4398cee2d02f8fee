"""Speech-first IVR menus: configuration (``model``, ``check``, ``hours``), the engine that
walks a menu against a ``CallIO`` (``engine``, with ``status`` lookup), the live ``CallIO``
over async AGI (``live_io``), the callback survey (``survey``) and the queue's callback key
(``waiting``). ``tests/menu_harness.py`` runs the menus against scripted callers on pbxsim.

Nothing here is imported by ``ivr.menus`` itself, so loading the configuration (which uses
``model`` and ``check``) stays light.
"""
