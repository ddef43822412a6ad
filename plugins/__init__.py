"""xp's built-in plugins, imported as `xp_plugins`: one module per component kind.

Each module ends in one hook implementation and is registered through the `xp.plugins`
entry-point group, the same path a third-party plugin takes.
"""
