//! Times cubic B-spline resampling of a 256x256x24 volume (0.5x0.5x5 mm) to 1 mm
//! isotropic (output 128x128x120), prefilter included.  Same volume and grid as
//! `bench_resample.py` (SimpleITK).  Run: `cargo run --example bench_resample`.
//! With `-- --register` it also times a default rigid registration (Mattes MI,
//! pyramid 4/2/1) of that volume against a rotated/shifted copy of itself.

use std::time::Instant;

use ndarray::Array3;
use radpipe_imaging::{register, resample_to_grid, resample_to_spacing, write_nifti, Grid, Interpolator, RegistrationConfig, Transform, Volume};

fn main() {
    let data = Array3::from_shape_fn((256, 256, 24), |(i, j, k)| {
        let (x, y, z) = (i as f32 * 0.5, j as f32 * 0.5, k as f32 * 5.0);
        100.0 * (x * 0.1).sin() * (y * 0.07).cos() + z + ((i * 31 + j * 17 + k * 7) % 13) as f32
    });
    let vol = Volume::new(data, [0.5, 0.5, 5.0], [0.0; 3], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).unwrap();
    let threads = rayon::current_num_threads();
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        out = Some(resample_to_spacing(&vol, [1.0; 3], Interpolator::BSpline).unwrap());
        times.push(t0.elapsed().as_secs_f64());
    }
    let out = out.unwrap();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "radpipe B-spline resample 256x256x24 @0.5x0.5x5 -> {:?} @1mm: runs {:?} s, median {:.3} s ({} rayon threads, dev profile)",
        out.size(),
        times.iter().map(|t| format!("{t:.3}")).collect::<Vec<_>>(),
        times[1],
        threads
    );

    if std::env::args().any(|a| a == "--register") {
        // smooth blob phantom on the same grid (a sinusoid is too self-similar for MI)
        let blobs: Vec<([f64; 3], f64, f64)> = (0..40)
            .map(|b| {
                let h = |m: u64| ((b as u64 * 2654435761 + m * 97) % 1000) as f64 / 1000.0;
                ([20.0 + 88.0 * h(1), 20.0 + 88.0 * h(2), 15.0 + 90.0 * h(3)], 4.0 + 10.0 * h(4), 40.0 + 60.0 * h(5))
            })
            .collect();
        let fixed_data = Array3::from_shape_fn((256, 256, 24), |(i, j, k)| {
            let p = [i as f64 * 0.5, j as f64 * 0.5, k as f64 * 5.0];
            blobs.iter().map(|(c, s, a)| a * (-((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) + (p[2] - c[2]).powi(2)) / (2.0 * s * s)).exp()).sum::<f64>()
                as f32
        });
        let fixed = vol.with_data(fixed_data).unwrap();
        let truth = Transform::euler(fixed.center(), [0.03, -0.02, 0.05, 2.0, -1.5, 1.0]);
        let moving = resample_to_grid(&fixed, &Grid::of(&fixed), truth.inverse().as_ref(), Interpolator::BSpline, 0.0).unwrap();
        let dir = std::env::temp_dir();
        write_nifti(&fixed, dir.join("radpipe_bench_fixed.nii.gz")).unwrap();
        write_nifti(&moving, dir.join("radpipe_bench_moving.nii.gz")).unwrap();
        let t0 = Instant::now();
        let res = register(&fixed, &moving, &RegistrationConfig::default()).unwrap();
        println!(
            "radpipe rigid registration 256x256x24 blob phantom (default config): {:.2} s, iterations {:?}, parameters {:?} (truth [0.03, -0.02, 0.05, 2.0, -1.5, 1.0], centre {:?})",
            t0.elapsed().as_secs_f64(),
            res.iterations,
            res.transform.parameters().iter().map(|p| format!("{p:.4}")).collect::<Vec<_>>(),
            fixed.center()
        );
    }
}
