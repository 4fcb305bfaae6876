"""The interactive explorer of notebook 08, in four modules (import the one you need; nothing is imported here,
so that `ipywidgets` loads only with `ui`):

- `state`: `Explorer`, the explorer's state and work (photo, model, layer, method, class), without widgets.
- `methods`: `METHODS`, the registry of explanation methods it offers.
- `view`: what it draws: the photo and its overlay as one PNG, the colour bar, percentile clipping.
- `ui`: the ipywidgets controls and `explore()`.
"""
