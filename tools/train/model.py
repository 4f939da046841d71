"""The default network: a narrow ResNet for one-channel chest radiographs, sized for accuracy
per CPU millisecond on the 2-core build machine. Its last stage is dilated instead of strided,
so the class maps are 1/16 of the input (14x14 at 224) rather than 1/32: finer maps give the
TB class map a chance to point at a lesion rather than at a lung third."""
import torch
from torch import nn


class Block(nn.Module):
    """Basic residual block (two 3x3 convolutions); a 1x1 projection when the shape changes."""

    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.proj is None else self.proj(x)))


class Backbone(nn.Module):
    """[N,1,H,W] -> [N,C,H/16,W/16]. widths: channels of the four stages."""

    def __init__(self, widths=(32, 64, 128, 192), blocks=(1, 2, 2, 2)):
        super().__init__()
        w0 = widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(1, w0 // 2 + 8, 3, 2, 1, bias=False), nn.BatchNorm2d(w0 // 2 + 8),
            nn.ReLU(inplace=True),
            nn.Conv2d(w0 // 2 + 8, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0),
            nn.ReLU(inplace=True))
        layers = []
        cin = w0
        # stage strides: 1 (1/4), 2 (1/8), 2 (1/16), then dilation 2 at 1/16
        for i, (w, n) in enumerate(zip(widths, blocks)):
            stride = 2 if i in (1, 2) else 1
            dilation = 2 if i == 3 else 1
            for j in range(n):
                layers.append(Block(cin, w, stride if j == 0 else 1, dilation))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero-init the last BN of each residual branch: blocks start as identities
        for m in self.modules():
            if isinstance(m, Block):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        return self.layers(self.stem(x))


class Ensemble(nn.Module):
    """Several backbones side by side: their feature maps concatenated along the channels. Under
    a classifier whose weights are each member's divided by the member count, the class maps
    (and so the logits) are the mean of the members'."""

    def __init__(self, backbones):
        super().__init__()
        self.members = nn.ModuleList(backbones)
        self.out_channels = sum(b.out_channels for b in backbones)

    def forward(self, x):
        return torch.cat([b(x) for b in self.members], 1)


class GradReverse(torch.autograd.Function):
    """Identity forward, gradient times -lambda backward (domain-adversarial training)."""

    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


class SourceHeads(nn.Module):
    """Class-conditional source classifiers on the pooled features: one head guesses which TB
    collection a TB image came from, the other which non-TB collection a non-TB image came from.
    Trained through gradient reversal, they push the backbone to make sources unrecognisable
    within each class, while the TB/non-TB difference itself stays allowed."""

    def __init__(self, channels, n_tb_sources, n_other_sources, hidden=64):
        super().__init__()

        def head(n):
            return nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, n))

        self.tb = head(n_tb_sources)
        self.other = head(n_other_sources)

    def forward(self, pooled, lam):
        z = GradReverse.apply(pooled, lam)
        return self.tb(z), self.other(z)
