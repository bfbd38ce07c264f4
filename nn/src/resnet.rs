//! ResNet-18/34/50/101 with torchvision's parameter names (`conv1.weight`,
//! `layer3.5.bn2.running_var`, `layer1.0.downsample.0.weight`, `fc.bias`, ...),
//! so that a torchvision `state_dict` saved as safetensors loads unchanged
//! (`num_batches_tracked` entries are ignored). Bottleneck blocks stride in
//! their 3x3 convolution (torchvision's "v1.5"). The head is
//! `fc(dropout(pool(layer4)))`, with any number of classes; the layer4
//! activation is exposed for features and Grad-CAM.

use tch::nn::{self, ModuleT};
use tch::Tensor;

/// A torchvision ResNet depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet101,
}

impl Arch {
    pub fn parse(name: &str) -> Result<Arch, String> {
        match name {
            "resnet18" => Ok(Arch::ResNet18),
            "resnet34" => Ok(Arch::ResNet34),
            "resnet50" => Ok(Arch::ResNet50),
            "resnet101" => Ok(Arch::ResNet101),
            other => Err(format!("unknown backbone `{other}` (resnet18, resnet34, resnet50, resnet101)")),
        }
    }

    fn blocks(self) -> [usize; 4] {
        match self {
            Arch::ResNet18 => [2, 2, 2, 2],
            Arch::ResNet34 | Arch::ResNet50 => [3, 4, 6, 3],
            Arch::ResNet101 => [3, 4, 23, 3],
        }
    }

    fn bottleneck(self) -> bool {
        matches!(self, Arch::ResNet50 | Arch::ResNet101)
    }

    /// Width of the pooled layer4 features (512 or 2048).
    pub fn feature_dim(self) -> i64 {
        if self.bottleneck() {
            2048
        } else {
            512
        }
    }
}

fn conv(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig { stride, padding: k / 2, bias: false, ..Default::default() };
    nn::conv2d(p, cin, cout, k, config)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

#[derive(Debug)]
struct Block {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn new(p: &nn::Path, cin: i64, width: i64, stride: i64, bottleneck: bool) -> (Block, i64) {
        let (shapes, cout): (Vec<(i64, i64, i64, i64)>, i64) = if bottleneck {
            (vec![(cin, width, 1, 1), (width, width, 3, stride), (width, width * 4, 1, 1)], width * 4)
        } else {
            (vec![(cin, width, 3, stride), (width, width, 3, 1)], width)
        };
        let convs =
            shapes.iter().enumerate().map(|(i, &(a, b, k, s))| (conv(p / format!("conv{}", i + 1), a, b, k, s), bn(p / format!("bn{}", i + 1), b))).collect();
        let downsample = (stride != 1 || cin != cout).then(|| {
            let d = p / "downsample";
            (conv(&d / "0", cin, cout, 1, stride), bn(&d / "1", cout))
        });
        (Block { convs, downsample }, cout)
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, (c, b)) in self.convs.iter().enumerate() {
            y = y.apply(c).apply_t(b, train);
            if i < last {
                y = y.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some((c, b)) => x.apply(c).apply_t(b, train),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }
}

/// What one forward pass gives.
pub struct Forward {
    /// `[N, C, h, w]` after layer4.
    pub layer4: Tensor,
    /// `[N, C]` global average of layer4.
    pub pooled: Tensor,
    /// `[N, classes]`.
    pub logits: Tensor,
}

#[derive(Debug)]
pub struct ResNet {
    pub arch: Arch,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    layers: Vec<Vec<Block>>,
    fc: nn::Linear,
    dropout: f64,
}

impl ResNet {
    /// Variables under `p` with torchvision's names.
    pub fn new(p: &nn::Path, arch: Arch, classes: i64, dropout: f64) -> ResNet {
        let conv1 = nn::conv2d(p / "conv1", 3, 64, 7, nn::ConvConfig { stride: 2, padding: 3, bias: false, ..Default::default() });
        let bn1 = bn(p / "bn1", 64);
        let mut cin = 64;
        let mut layers = Vec::new();
        for (li, (&n, width)) in arch.blocks().iter().zip([64, 128, 256, 512]).enumerate() {
            let lp = p / format!("layer{}", li + 1);
            let mut blocks = Vec::new();
            for b in 0..n {
                let stride = if b == 0 && li > 0 { 2 } else { 1 };
                let (block, cout) = Block::new(&(&lp / b.to_string()), cin, width, stride, arch.bottleneck());
                cin = cout;
                blocks.push(block);
            }
            layers.push(blocks);
        }
        let fc = nn::linear(p / "fc", cin, classes, Default::default());
        ResNet { arch, conv1, bn1, layers, fc, dropout }
    }

    /// The layer4 activation of `x` (`[N, 3, H, W]`).
    pub fn layer4(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.conv1).apply_t(&self.bn1, train).relu().max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for layer in &self.layers {
            for block in layer {
                y = block.forward_t(&y, train);
            }
        }
        y
    }

    /// Pool and classify a layer4 activation.
    pub fn head(&self, layer4: &Tensor, train: bool) -> (Tensor, Tensor) {
        let pooled = layer4.mean_dim([2i64, 3].as_slice(), false, layer4.kind());
        let logits = pooled.dropout(self.dropout, train).apply(&self.fc);
        (pooled, logits)
    }

    pub fn forward_parts(&self, x: &Tensor, train: bool) -> Forward {
        let layer4 = self.layer4(x, train);
        let (pooled, logits) = self.head(&layer4, train);
        Forward { layer4, pooled, logits }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_parts(x, train).logits
    }
}
