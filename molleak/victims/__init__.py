"""Victims: the one builder (`build.ensure_victim`) and the zoo of pre-training strategies.

The encoders live in `molleak.models`, the pre-training strategies in `molleak.pretrain`; this
package decides which model to build for which role, and when one already built can be reused.
"""
