//! radpipe-nn against PyTorch/torchvision, through the fixtures written by
//! `tests/fixtures/generate/nn.py` (weights rebuilt here from the same seeds).

use std::collections::HashMap;
use std::path::PathBuf;

use radpipe_nn::fusion::FusionConfig;
use radpipe_nn::loss::focal_loss;
use radpipe_nn::resnet::Arch;
use radpipe_nn::train;
use radpipe_nn::{gradcam, weights};
use radpipe_protocol::TrainSpec;
use tch::nn::{ModuleT, OptimizerConfig};
use tch::{Kind, Tensor};

/// libtorch's random generator is global: tests that seed it run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nn").join(name);
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

/// max |a - b| / (max |b| + tiny): relative to the reference's scale.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let diff = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[]);
    diff / (b.to_kind(Kind::Double).abs().max().double_value(&[]) + 1e-12)
}

fn forward_parity(arch: Arch, file: &str, seed: i64) {
    tch::set_num_threads(2);
    let f = fixture(file);
    let (_vs, model) = weights::seeded_resnet(arch, seed, 2);
    let out = tch::no_grad(|| model.forward_parts(&f["x"], false));
    let (e_logits, e_pooled) = (rel_err(&out.logits, &f["logits"]), rel_err(&out.pooled, &f["pooled"]));
    assert!(e_logits < 1e-4, "{file}: logits differ by {e_logits:e} (relative)");
    assert!(e_pooled < 1e-4, "{file}: pooled features differ by {e_pooled:e} (relative)");
}

#[test]
fn resnet18_forward_equals_torchvision() {
    let _serial = serial();
    forward_parity(Arch::ResNet18, "forward_resnet18.safetensors", 11);
}

#[test]
fn resnet101_forward_equals_torchvision() {
    let _serial = serial();
    forward_parity(Arch::ResNet101, "forward_resnet101.safetensors", 12);
}

#[test]
fn gradcam_matches_pytorch_hooks() {
    let _serial = serial();
    let f = fixture("gradcam_resnet18.safetensors");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nn/nn.json")).unwrap()).unwrap();
    let seed = summary["gradcam"][0]["seed"].as_i64().unwrap();
    let (_vs, model) = weights::seeded_resnet(Arch::ResNet18, seed, 2);
    let cam = gradcam::grad_cam(&model, &f["x"], 1);
    let (a, b) = (cam.flatten(0, -1).to_kind(Kind::Double), f["cam"].flatten(0, -1).to_kind(Kind::Double));
    let corr = Tensor::stack(&[a, b], 0).corrcoef().double_value(&[0, 1]);
    assert!(corr > 0.999, "Grad-CAM correlation with PyTorch {corr}");
}

#[test]
fn focal_loss_value_and_gradient_equal_pytorch() {
    let _serial = serial();
    let f = fixture("focal.safetensors");
    for (k, (alpha, gamma)) in [(0.25, 2.0), (0.5, 0.0), (0.75, 1.5)].into_iter().enumerate() {
        let logits = f[&format!("logits{k}")].copy().set_requires_grad(true);
        let loss = focal_loss(&logits, &f[&format!("targets{k}")], alpha, gamma);
        loss.backward();
        let (want, got) = (f[&format!("loss{k}")].double_value(&[0]), loss.double_value(&[]));
        assert!((got - want).abs() < 1e-6 * (1.0 + want.abs()), "focal loss case {k}: {got} vs {want}");
        let e = rel_err(&logits.grad(), &f[&format!("grad{k}")]);
        assert!(e < 1e-5, "focal gradient case {k}: {e:e}");
    }
}

fn fusion_config(pool: &str, norm: &str) -> FusionConfig {
    FusionConfig {
        features: 48,
        patch: 8,
        d_model: 16,
        heads: 8,
        layers: 3,
        ff: 32,
        hidden: 16,
        classes: 2,
        dropout: 0.0,
        pool: pool.into(),
        norm: norm.into(),
    }
}

fn seeded_fusion(pool: &str, norm: &str, seed: i64, f: &HashMap<String, Tensor>) -> (tch::nn::VarStore, radpipe_nn::fusion::Fusion) {
    let (vs, model) = weights::seeded_fusion(fusion_config(pool, norm), seed);
    let vars = vs.variables();
    tch::no_grad(|| {
        vars["input_mean"].shallow_clone().copy_(&f["input_mean"]);
        vars["input_std"].shallow_clone().copy_(&f["input_std"]);
    });
    (vs, model)
}

#[test]
fn fusion_transformer_equals_pytorch_transformer_encoder() {
    let _serial = serial();
    for (pool, norm, seed, file) in [("mean", "post", 21, "fusion_mean"), ("cls", "post", 22, "fusion_cls"), ("flatten", "pre", 23, "fusion_flatten_pre")] {
        let f = fixture(&format!("{file}.safetensors"));
        let (_vs, model) = seeded_fusion(pool, norm, seed, &f);
        let logits = tch::no_grad(|| model.forward_t(&f["x"], false));
        let e = rel_err(&logits, &f["logits"]);
        assert!(e < 1e-5, "fusion ({norm}-norm, {pool} pooling) differs from PyTorch by {e:e}");
    }
}

#[test]
fn two_sgd_steps_on_the_focal_loss_equal_pytorch() {
    let _serial = serial();
    let f = fixture("fusion_mean.safetensors");
    let (vs, model) = seeded_fusion("mean", "post", 21, &f);
    let mut opt = tch::nn::Sgd { momentum: 0.9, dampening: 0.0, wd: 1e-4, nesterov: false }.build(&vs, 0.01).unwrap();
    for _ in 0..2 {
        let loss = focal_loss(&model.forward_t(&f["x"], true), &f["y"], 0.25, 2.0);
        opt.backward_step(&loss);
    }
    for (name, var) in vs.variables() {
        let want = &f[&format!("after.{name}")];
        let e = rel_err(&var, want);
        assert!(e < 1e-5, "after two SGD steps, `{name}` differs by {e:e}");
    }
}

fn toy_images(n: i64, seed: i64) -> (Tensor, Vec<i64>) {
    tch::manual_seed(seed);
    let y: Vec<i64> = (0..n).map(|i| i % 2).collect();
    let x = Tensor::randn([n, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
    // Class 1 has a brighter centre: learnable.
    let bump = Tensor::from_slice(&y).to_kind(Kind::Float).view([n, 1, 1, 1]) * 2.0;
    let _ = x.narrow(2, 12, 8).narrow(3, 12, 8).g_add_(&bump);
    (x, y)
}

#[test]
fn training_is_deterministic_on_cpu() {
    let _serial = serial();
    let (x, y) = toy_images(24, 5);
    let config = TrainSpec { epochs: 2, batch_size: 8, seed: 3, crop_pad: 2, ..TrainSpec::default() };
    let run = || {
        tch::manual_seed(config.seed as i64);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let model = radpipe_nn::resnet::ResNet::new(&vs.root(), Arch::ResNet18, 2, 0.2);
        let report = train::train(&model, &vs, &x, &y, &config, &mut |_, _| {}).unwrap();
        (report.curves.iter().map(|e| e.train_loss).collect::<Vec<_>>(), weights::snapshot(&vs))
    };
    let (curves_a, a) = run();
    let (curves_b, b) = run();
    assert_eq!(curves_a, curves_b);
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "`{name}` differs between two runs with the same seed");
    }
}

#[test]
fn a_wrong_architecture_names_the_first_differing_tensor() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (vs18, _) = weights::seeded_resnet(Arch::ResNet18, 1, 2);
    let r18 = dir.path().join("r18.safetensors");
    weights::save(&vs18, &r18).unwrap();
    let mut vs50 = tch::nn::VarStore::new(tch::Device::Cpu);
    let _m = radpipe_nn::resnet::ResNet::new(&vs50.root(), Arch::ResNet50, 2, 0.0);
    let err = weights::load(&mut vs50, &r18, &[]).unwrap_err().to_string();
    // Variables are checked in name order.
    assert!(err.contains("tensor `fc.weight` has shape [2, 512], the model expects [2, 2048]: the file holds another architecture"), "{err}");
    // ResNet-34 holds everything ResNet-18 has, plus blocks: the first extra one is named.
    let (vs34, _) = weights::seeded_resnet(Arch::ResNet34, 1, 2);
    let r34 = dir.path().join("r34.safetensors");
    weights::save(&vs34, &r34).unwrap();
    let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _m = radpipe_nn::resnet::ResNet::new(&vs.root(), Arch::ResNet18, 2, 0.0);
    let err = weights::load(&mut vs, &r34, &[]).unwrap_err().to_string();
    assert!(err.contains("`layer1.2.bn1.bias` is not part of this model"), "{err}");
}

#[test]
fn one_class_and_non_finite_losses_are_refused() {
    let _serial = serial();
    let (x, _) = toy_images(10, 1);
    let config = TrainSpec { epochs: 1, batch_size: 4, ..TrainSpec::default() };
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = radpipe_nn::resnet::ResNet::new(&vs.root(), Arch::ResNet18, 2, 0.0);
    let err = train::train(&model, &vs, &x, &[0; 10], &config, &mut |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("0 of class 1"), "{err}");
    let bad = x.copy();
    let _ = bad.get(3).fill_(f64::NAN);
    let y: Vec<i64> = (0..10).map(|i| i % 2).collect();
    let err = train::train(&model, &vs, &bad, &y, &config, &mut |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("not finite") && err.contains("epoch 1, batch"), "{err}");
}

#[test]
fn cuda_requested_without_cuda_is_an_error_and_auto_falls_back() {
    let _serial = serial();
    if tch::Cuda::is_available() {
        return;
    }
    let err = radpipe_nn::device::parse("cuda").unwrap_err().to_string();
    assert!(err.contains("0 usable CUDA device") && err.contains("device: auto"), "{err}");
    assert_eq!(radpipe_nn::device::parse("auto").unwrap(), tch::Device::Cpu);
    assert!(radpipe_nn::device::parse("gpu").is_err());
}

#[test]
fn a_torchscript_backbone_gives_pytorchs_outputs_and_grad_cam() {
    let _serial = serial();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nn");
    let f = fixture("torchscript.safetensors");
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = radpipe_nn::backbone::build(&vs.root(), "torchscript", Some(&dir.join("tiny_script.pt")), 2, 0.0).unwrap();
    assert!(!vs.variables().is_empty(), "the module's parameters are trainable variables");
    let out = tch::no_grad(|| model.parts(&f["x"], false));
    assert!(rel_err(&out.logits, &f["logits"]) < 1e-5, "logits");
    assert!(rel_err(&out.pooled, &f["pooled"]) < 1e-5, "pooled activation");
    let cam = gradcam::grad_cam(model.as_ref(), &f["x"].get(0), 1);
    let corr = Tensor::stack(&[cam.flatten(0, -1).to_kind(Kind::Double), f["cam"].flatten(0, -1).to_kind(Kind::Double)], 0).corrcoef().double_value(&[0, 1]);
    assert!(corr > 0.999, "Grad-CAM correlation {corr}");
}
