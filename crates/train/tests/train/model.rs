use crate::common::small_model as cfg;
use tch::{nn, Device, Kind, Tensor};
use train::config::{Branches, Deform};
use train::model::{ConvOffset2D, ModelConfig, ModelInput, Network};

fn input(c: &ModelConfig, b: i64) -> ModelInput {
    let o = (Kind::Float, Device::Cpu);
    let part = |(h, w): (i64, i64)| Tensor::randn([b, c.frames, 3, h, w], o);
    ModelInput {
        face: Tensor::randn([b, 3, c.face.0, c.face.1], o),
        parts: [part(c.parts[0]), part(c.parts[1]), part(c.parts[2])],
    }
}

#[test]
fn output_shapes_for_every_variant() {
    tch::manual_seed(0);
    for deform in [Deform::Channel, Deform::Dcn, Deform::None] {
        for branches in [Branches::Both, Branches::Gfm, Branches::Pbm] {
            let c = cfg(branches, deform);
            let vs = nn::VarStore::new(Device::Cpu);
            let m = Network::new(&vs.root(), &c).unwrap();
            let out = m.forward(&input(&c, 3), true);
            assert_eq!(
                out.global.as_ref().map(|t| t.size()),
                branches.has_global().then(|| vec![3, 5])
            );
            assert_eq!(
                out.local.as_ref().map(|t| t.size()),
                branches.has_local().then(|| vec![3, 5])
            );
        }
    }
    // The paper's full-size shapes: SSM features 16×16 / 6×16 / 8×4 / 4×8 and 96/32/32 LSTM inputs.
    let c = train::bench::paper_config(7, 0.0625);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = Network::new(&vs.root(), &c).unwrap();
    let out = m.forward(&input(&c, 2), true);
    assert_eq!(out.global.unwrap().size(), vec![2, 7]);
    let names: Vec<String> = vs.variables().into_keys().collect();
    let lstm_in = vs.variables()["pbm.eyes.lstm.weight_ih_l0"].size();
    assert_eq!(lstm_in, vec![4 * 256, 96], "{names:?}");
    assert_eq!(vs.variables()["pbm.nose.lstm.weight_ih_l0"].size()[1], 32);
    assert_eq!(vs.variables()["pbm.mouth.lstm.weight_ih_l0"].size()[1], 32);
    // Crops below the stride are refused.
    let mut bad = cfg(Branches::Both, Deform::Channel);
    bad.parts[1] = (4, 16);
    assert!(Network::new(&nn::VarStore::new(Device::Cpu).root(), &bad).is_err());
}

#[test]
fn gradients_reach_every_branch() {
    tch::manual_seed(1);
    for deform in [Deform::Channel, Deform::Dcn] {
        let c = cfg(Branches::Both, deform);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = Network::new(&vs.root(), &c).unwrap();
        let out = m.forward(&input(&c, 4), true);
        let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
        // Biases of the ReLU heads can sit at zero gradient for a random batch; the weights of
        // every module must get some.
        let loss = out.global.unwrap().cross_entropy_for_logits(&y)
            + out.local.unwrap().cross_entropy_for_logits(&y);
        loss.backward();
        for prefix in [
            "ssm.features.0.",
            "ssm.features.21.",
            "gfm.block0.",
            "gfm.block2.",
            "pbm.eyes.lstm.",
            "pbm.nose.conv0.",
            "pbm.mouth.lstm.",
            "pbm.end0.",
        ] {
            let total: f64 = vs
                .variables()
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .map(|(_, t)| t.grad().abs().sum(Kind::Float).double_value(&[]))
                .sum();
            assert!(total > 0.0, "{deform:?}: no gradient reaches {prefix}");
        }
    }
}

#[test]
fn conv_offset_with_zero_offsets_is_the_identity() {
    let x = Tensor::randn([2, 3, 5, 7], (Kind::Float, Device::Cpu));
    let zero = Tensor::zeros([2, 6, 5, 7], (Kind::Float, Device::Cpu));
    let y = ConvOffset2D::resample(&x, &zero);
    let d = (&y - &x).abs().max().double_value(&[]);
    assert!(d < 1e-5, "max difference {d}");
    // A whole-pixel offset in x moves the map by one column (clamped at the border).
    let o = Tensor::zeros([2, 6, 5, 7], (Kind::Float, Device::Cpu));
    let _ = o.narrow(1, 0, 1).fill_(1.0); // channel 0, x offset
    let y = ConvOffset2D::resample(&x, &o);
    let d = (y.select(1, 0).narrow(2, 0, 6) - x.select(1, 0).narrow(2, 1, 6))
        .abs()
        .max()
        .double_value(&[]);
    assert!(d < 1e-5, "{d}");
}

#[test]
fn torchvision_named_safetensors_load_into_the_ssm() {
    let dir = tempfile::tempdir().unwrap();
    let c = train::bench::paper_config(7, 1.0);
    let vs0 = nn::VarStore::new(Device::Cpu);
    let _m0 = Network::new(&vs0.root(), &c).unwrap();
    // A file with torchvision's names and known values: weight = index, bias = −index.
    let mut named = Vec::new();
    for i in [0usize, 2, 5, 7, 10, 12, 14, 17, 19, 21] {
        let w = &vs0.variables()[&format!("ssm.features.{i}.weight")];
        named.push((
            format!("features.{i}.weight"),
            Tensor::full(w.size(), i as f64, (Kind::Float, Device::Cpu)),
        ));
        named.push((
            format!("features.{i}.bias"),
            Tensor::full([w.size()[0]], -(i as f64), (Kind::Float, Device::Cpu)),
        ));
    }
    named.push((
        "classifier.0.weight".into(),
        Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)),
    ));
    let file = dir.path().join("vgg16.safetensors");
    Tensor::write_safetensors(&named, &file).unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _m = Network::new(&vs.root(), &c).unwrap();
    assert_eq!(train::model::load_vgg16(&mut vs, &file).unwrap(), 20);
    for i in [0usize, 7, 21] {
        let v = vs.variables();
        assert_eq!(
            v[&format!("ssm.features.{i}.weight")]
                .mean(Kind::Float)
                .double_value(&[]),
            i as f64
        );
        assert_eq!(
            v[&format!("ssm.features.{i}.bias")]
                .mean(Kind::Float)
                .double_value(&[]),
            -(i as f64)
        );
    }
    // A width-reduced model refuses full-size weights, naming the tensor.
    let mut small = nn::VarStore::new(Device::Cpu);
    let _s = Network::new(&small.root(), &train::bench::paper_config(7, 0.5)).unwrap();
    let e = train::model::load_vgg16(&mut small, &file)
        .unwrap_err()
        .to_string();
    assert!(e.contains("features.0.weight"), "{e}");
}

#[test]
fn a_tiny_batch_overfits() {
    tch::manual_seed(3);
    let c = cfg(Branches::Both, Deform::Channel);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = Network::new(&vs.root(), &c).unwrap();
    let mut opt = train::optim::Adam::new(&vs, 3e-3, 0.0);
    let x = input(&c, 5);
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4]);
    let mut acc = 0.0;
    for _ in 0..300 {
        let out = m.forward(&x, true);
        let loss = out.global.as_ref().unwrap().cross_entropy_for_logits(&y)
            + out.local.as_ref().unwrap().cross_entropy_for_logits(&y);
        opt.zero_grad();
        loss.backward();
        opt.step().unwrap();
        let pred = train::trainer::fuse(&out.global, &out.local, train::config::Fusion::Sum, 0.5)
            .argmax(1, false);
        acc = pred
            .eq_tensor(&y)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        if acc == 1.0 {
            break;
        }
    }
    assert_eq!(acc, 1.0);
}

/// The fused probabilities, by hand: `sum` is the softmax of w·g + (1−w)·p (so its arg-max is the
/// authors' arg-max of the raw sum), `softmax-average` is w·softmax(g) + (1−w)·softmax(p).
#[test]
fn fusion_rules_known_answers() {
    use train::config::Fusion;
    let g = Tensor::from_slice(&[4.0f32, 0.0, 1.0]).view([1, 3]);
    let p = Tensor::from_slice(&[0.0f32, 3.0, 2.0]).view([1, 3]);
    let sm = |v: [f64; 3]| {
        let e: Vec<f64> = v.iter().map(|x| x.exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| x / s).collect::<Vec<f64>>()
    };
    let got = |f: Fusion, w: f64| -> Vec<f64> {
        let t = train::trainer::fuse(&Some(g.shallow_clone()), &Some(p.shallow_clone()), f, w);
        Vec::<f32>::try_from(&t.view([-1]))
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    // sum, w = 0.5: softmax(2, 1.5, 1.5).
    assert!(close(&got(Fusion::Sum, 0.5), &sm([2.0, 1.5, 1.5])));
    // sum, w = 0.7: softmax(2.8, 0.9, 1.3).
    assert!(close(&got(Fusion::Sum, 0.7), &sm([2.8, 0.9, 1.3])));
    let (a, b) = (sm([4.0, 0.0, 1.0]), sm([0.0, 3.0, 2.0]));
    let avg: Vec<f64> = a.iter().zip(&b).map(|(x, y)| 0.5 * x + 0.5 * y).collect();
    assert!(close(&got(Fusion::SoftmaxAverage, 0.5), &avg));
    // The two rules disagree here: the raw sum picks class 0, the softmax average class 1.
    let g2 = Tensor::from_slice(&[2.0f32, 0.0]).view([1, 2]);
    let p2 = Tensor::from_slice(&[0.0f32, 1.9]).view([1, 2]);
    let pick = |f: Fusion| {
        train::trainer::fuse(&Some(g2.shallow_clone()), &Some(p2.shallow_clone()), f, 0.5)
            .argmax(1, false)
            .int64_value(&[0])
    };
    assert_eq!(pick(Fusion::Sum), 0);
    let (sg, sp) = (1.0 / (1.0 + (-2f64).exp()), 1.0 / (1.0 + (-1.9f64).exp()));
    assert_eq!(pick(Fusion::SoftmaxAverage), if sg > sp { 0 } else { 1 });
}

/// `init = "authors"`: conv weights N(0, √(2/(k²·c_out))) and zero biases, batch norm 1 / 0 with
/// untouched running statistics, LSTM weights and biases inside ±1/√hidden (not zero), offset
/// convs near zero; the same seed gives the same weights even while other threads use libtorch's
/// generator (the draws come from the project's counter-based generator), another seed others.
#[test]
fn authors_init_has_the_documented_statistics() {
    use train::config::InitScheme;
    let mut c = cfg(Branches::Both, Deform::Channel);
    c.width = 0.5;
    c.ssm_batchnorm = true;
    let build = |seed: i64| {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = Network::new(&vs.root(), &c).unwrap();
        train::model::initialise(&vs, &c, InitScheme::Authors, seed as u64);
        let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let vars = build(5);
    let bound = 1.0 / ((c.lstm_side * c.lstm_side) as f64).sqrt();
    let (mut convs, mut lstm) = (0, 0);
    for (name, t) in &vars {
        let leaf = name.rsplit('.').next().unwrap();
        if name.contains(".offsets.") {
            assert!(t.abs().max().double_value(&[]) < 0.1, "{name}");
        } else if name.contains(".lstm.") {
            let m = t.abs().max().double_value(&[]);
            assert!(
                m <= bound && m > 0.5 * bound,
                "{name}: max |w| {m}, bound {bound}"
            );
            lstm += 1;
        } else if name.starts_with("ssm.bn.") {
            let want = match leaf {
                "weight" | "running_var" => 1.0,
                _ => 0.0,
            };
            let dev = (t - want).abs().max().double_value(&[]);
            assert!(dev == 0.0, "{name}: {dev}");
        } else if leaf == "weight" && t.dim() == 4 && t.numel() >= 2000 {
            let s = t.size();
            let want = (2.0 / (s[0] * s[2] * s[3]) as f64).sqrt();
            let std = t.std(true).double_value(&[]);
            assert!(
                (std / want - 1.0).abs() < 0.1,
                "{name}: std {std}, want {want}"
            );
            assert!(
                t.mean(Kind::Float).double_value(&[]).abs() < 0.2 * want,
                "{name}"
            );
            convs += 1;
        } else if leaf == "bias" {
            assert_eq!(t.abs().max().double_value(&[]), 0.0, "{name}");
        }
    }
    assert!(
        convs >= 10 && lstm >= 12,
        "{convs} convs, {lstm} lstm tensors checked"
    );
}

/// channels_last weights (what the trainer uses on CUDA), checked on the CPU: the same scores and
/// loss as the default layout within fp32 rounding, gradients and Adam's moments in the
/// channels_last layout, and the fused Adam step runs on them and moves the weights as the loop does.
#[test]
fn channels_last_weights_give_the_same_step() {
    use train::model::{initialise, is_channels_last, to_channels_last};
    let c = cfg(Branches::Both, Deform::Channel);
    let x = input(&c, 2);
    let labels = Tensor::from_slice(&[1i64, 3]);
    let run = |channels_last: bool, fused: bool| {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = Network::new(&vs.root(), &c).unwrap();
        initialise(&vs, &c, train::config::InitScheme::Authors, 5);
        if channels_last {
            to_channels_last(&vs);
            let w = &vs.variables()["ssm.features.2.weight"];
            assert!(is_channels_last(w), "{:?}", w.stride());
        }
        let mut opt = train::optim::Adam::new(&vs, 1e-3, 0.0).with_fused(fused);
        let face = if channels_last {
            train::model::channels_last(&x.face)
        } else {
            x.face.shallow_clone()
        };
        let inp = ModelInput {
            face,
            parts: x.parts.each_ref().map(|t| t.shallow_clone()),
        };
        let loss =
            train::trainer::mgln_loss(&m, inp, &labels, None, None, &Default::default(), false)
                .unwrap();
        opt.zero_grad();
        loss.total.backward();
        let w = vs.variables()["ssm.features.2.weight"].shallow_clone();
        assert_eq!(is_channels_last(&w.grad()), channels_last);
        opt.step().unwrap();
        let after = vs.variables()["gfm.block0.conv.weight"].detach().copy();
        (loss.total.double_value(&[]), after)
    };
    let (l0, w0) = run(false, false);
    for fused in [false, true] {
        let (l1, w1) = run(true, fused);
        assert!((l0 - l1).abs() <= 1e-5 * l0.abs().max(1.0), "{l0} vs {l1}");
        // The NHWC kernels sum in another order, and Adam's first step, lr·g/|g|, turns a
        // gradient element within rounding of zero into ±lr either way (seen: 1.4e-6 = 1.4e-3 lr
        // on one element). So: on average within 1 % of lr, and no element beyond 2·lr.
        let diff = (&w0 - &w1).abs();
        let (mean, max) = (
            diff.mean(Kind::Double).double_value(&[]),
            diff.max().double_value(&[]),
        );
        assert!(
            mean <= 1e-5 && max <= 2e-3,
            "fused {fused}: mean {mean}, max {max}"
        );
    }
}

/// A still image sent once (parts [b, 1, …], as the loader sends a batch whose frames are all
/// the same pixels) gives what its frames repeated give: the PBM scores in eval and training
/// mode (batch norm on: its batch statistics over the repeated frames are the same numbers), and
/// every gradient, within float rounding. A PBM that ran its LSTM over one step instead of T
/// fails this.
#[test]
fn a_still_image_sent_once_equals_its_frames_repeated() {
    tch::manual_seed(7);
    // Plain GFM convs: the deformable sampling computes its positions in fp32 whatever the
    // activations are, and this test runs in double precision.
    let c = ModelConfig {
        ssm_batchnorm: true,
        head_batchnorm: true,
        ..cfg(Branches::Both, Deform::None)
    };
    let mut vs = nn::VarStore::new(Device::Cpu);
    let m = Network::new(&vs.root(), &c).unwrap();
    // In double precision, so that the two ways of summing over the frames differ by rounding
    // far below the limits (in fp32 a batch norm's weight gradient differed by 2e-4 of its
    // largest value).
    vs.double();
    let once = input(
        &ModelConfig {
            frames: 1,
            ..c.clone()
        },
        4,
    );
    let once = ModelInput {
        face: once.face.to_kind(Kind::Double),
        parts: once.parts.each_ref().map(|p| p.to_kind(Kind::Double)),
    };
    let repeated = ModelInput {
        face: once.face.copy(),
        parts: once.parts.each_ref().map(|p| {
            let s = p.size();
            p.expand([s[0], c.frames, s[2], s[3], s[4]], false)
                .contiguous()
        }),
    };
    // Relative to the tensor's largest value, with an absolute floor for the biases before a
    // batch norm, whose gradients are rounding noise around 0.
    let close = |a: &Tensor, b: &Tensor, what: &str| {
        let scale = b.abs().max().double_value(&[]);
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff <= 1e-9 * scale + 1e-12, "{what}: {diff} of {scale}");
    };
    for train in [false, true] {
        let mut grads = Vec::new();
        let mut scores = Vec::new();
        for x in [&once, &repeated] {
            for (_, mut v) in vs.variables() {
                v.zero_grad();
            }
            let out = m.forward(x, train);
            let local = out.local.unwrap();
            (local.square().sum(Kind::Double) + out.global.unwrap().sum(Kind::Double)).backward();
            scores.push(local.detach());
            let mut g: Vec<(String, Tensor)> = vs
                .variables()
                .into_iter()
                .filter(|(_, v)| v.requires_grad())
                .map(|(n, v)| (n, v.grad().copy()))
                .collect();
            g.sort_by(|a, b| a.0.cmp(&b.0));
            grads.push(g);
        }
        close(&scores[0], &scores[1], &format!("scores (train {train})"));
        for ((name, a), (_, b)) in grads[0].iter().zip(&grads[1]) {
            close(a, b, &format!("gradient of {name} (train {train})"));
        }
    }
}
