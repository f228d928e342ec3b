"""The student network (HAN with attentive multimodal MIL pooling), its configs and checkpoints.

``avparse.model.config`` is torch-free; ``han`` and ``checkpoint`` import torch.
"""
