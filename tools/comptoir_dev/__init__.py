"""Developer and operator commands: ``comptoir dev``, ``comptoir migrate``, ``comptoir seed``, ..."""
