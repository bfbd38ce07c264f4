//! `device: auto | cpu | cuda | cuda:N`. `auto` takes the first GPU when CUDA
//! works, else the CPU; an explicit `cuda` never falls back silently.

use tch::{Cuda, Device};

use crate::Error;

pub fn parse(spec: &str) -> Result<Device, Error> {
    let cuda_count = || {
        if Cuda::is_available() {
            Cuda::device_count() as usize
        } else {
            0
        }
    };
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let index = match spec {
                "cuda" => 0,
                s => s
                    .strip_prefix("cuda:")
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| Error::new(format!("device `{spec}`: use auto, cpu, cuda or cuda:N")))?,
            };
            let n = cuda_count();
            if index >= n {
                return Err(Error::new(format!(
                    "device `{spec}` was requested but this machine has {n} usable CUDA device(s) (libtorch {}); use `device: auto` to fall back to the CPU",
                    env!("RADPIPE_LIBTORCH_VERSION")
                )));
            }
            Ok(Device::Cuda(index))
        }
    }
}
