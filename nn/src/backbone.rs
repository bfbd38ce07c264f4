//! A classifier with a layer4-like activation: torchvision's ResNets built
//! here, or a TorchScript module a user trained in PyTorch. The TorchScript
//! contract: `forward(x: [N, 3, H, W])` returns the tuple `(logits [N, classes],
//! activation [N, C, h, w])`; pooled features are the activation's spatial mean
//! and Grad-CAM differentiates the logits with respect to the activation, so
//! everything the ResNet path writes is written for it too. Its parameters are
//! registered in the VarStore, so it can be fine-tuned like the ResNet.

use std::cell::{Cell, RefCell};
use std::path::Path;

use tch::nn::{self, ModuleT};
use tch::{IValue, Kind, Tensor, TrainableCModule};

use crate::resnet::{Arch, Forward, ResNet};
use crate::Error;

pub trait Backbone: ModuleT {
    fn parts(&self, x: &Tensor, train: bool) -> Forward;
}

impl Backbone for ResNet {
    fn parts(&self, x: &Tensor, train: bool) -> Forward {
        self.forward_parts(x, train)
    }
}

#[derive(Debug)]
pub struct Script {
    module: RefCell<TrainableCModule>,
    training: Cell<bool>,
}

// The worker drives one model from one thread.
unsafe impl Sync for Script {}

impl Script {
    pub fn load(path: &Path, p: &nn::Path) -> Result<Script, Error> {
        let mut module =
            TrainableCModule::load(path, p.clone()).map_err(|e| Error::new(format!("{}: cannot load the TorchScript module: {e}", path.display())))?;
        module.set_eval();
        Ok(Script { module: RefCell::new(module), training: Cell::new(false) })
    }
}

impl Backbone for Script {
    fn parts(&self, x: &Tensor, train: bool) -> Forward {
        if self.training.get() != train {
            let mut m = self.module.borrow_mut();
            if train {
                m.set_train()
            } else {
                m.set_eval()
            }
            self.training.set(train);
        }
        let out = self.module.borrow().forward_is(&[IValue::Tensor(x.shallow_clone())]).expect("the TorchScript forward failed");
        let IValue::Tuple(mut items) = out else { panic!("the TorchScript module must return (logits, activation)") };
        let (Some(IValue::Tensor(layer4)), Some(IValue::Tensor(logits))) = (items.pop(), items.pop()) else {
            panic!("the TorchScript module must return (logits, activation)")
        };
        let pooled = layer4.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        Forward { layer4, pooled, logits }
    }
}

impl ModuleT for Script {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.parts(x, train).logits
    }
}

/// `resnet18|34|50|101`, or `torchscript` with a module file.
pub fn build(p: &nn::Path, name: &str, script: Option<&Path>, classes: i64, dropout: f64) -> Result<Box<dyn Backbone>, Error> {
    if name == "torchscript" {
        let path = script.ok_or_else(|| Error::new("backbone `torchscript` needs `weights:` naming the TorchScript file"))?;
        return Ok(Box::new(Script::load(path, p)?));
    }
    let arch = Arch::parse(name).map_err(Error::new)?;
    Ok(Box::new(ResNet::new(p, arch, classes, dropout)))
}
