# UperNet PiT-S, 160k ADE20K (512x512). Published: 42.6 mIoU (FDViT, Table 8;
# third-party, quoting the PiT setup): UperNet 160k, AdamW lr 6e-5, weight
# decay 1e-2, batch 16 -- the base's recipe. How PiT's stride-4 map was made
# there is not stated; here it is the backbone's learned ConvTranspose2d.
_base_ = './_base_/upernet_160k_ade20k.py'

model = dict(
    backbone=dict(
        type='PiT',
        arch='s',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/rwightman/pytorch-image-models/'
                       'releases/download/v0.1-pit-weights/pit_s_809.pth')),
    decode_head=dict(in_channels=[72, 144, 288, 576]),
    auxiliary_head=dict(in_channels=288))
