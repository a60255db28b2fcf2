use std::sync::{Arc, Mutex};

use concord_core::{DType, Result};
use concord_ops::{Backend, Buffer, Op, Prepared, TensorArg, TensorDesc};

/// A tensor living in one backend's memory.
pub struct DeviceTensor {
    /// The memory.
    pub buffer: Buffer,
    /// Element type and shape.
    pub desc: TensorDesc,
}

impl DeviceTensor {
    /// A view of the whole tensor.
    pub fn arg(&self) -> TensorArg<'_> {
        TensorArg {
            buffer: &self.buffer,
            offset: 0,
            desc: self.desc.clone(),
        }
    }
    /// Rows `first..first+count` of the outermost dimension.
    pub fn rows(&self, first: usize, count: usize) -> TensorArg<'_> {
        self.arg().rows(first, count)
    }
}

/// Runs ops on one backend: prepares each distinct op once, allocates outputs, launches.
pub struct Executor {
    backend: Arc<dyn Backend>,
    prepared: Mutex<Vec<Prepared>>,
}

impl Executor {
    /// An executor over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Executor {
            backend,
            prepared: Mutex::new(Vec::new()),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    fn prepared(&self, op: &Op) -> Result<Prepared> {
        let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.iter().find(|p| &p.op == op) {
            return Ok(p.clone());
        }
        let p = self.backend.prepare(op)?;
        cache.push(p.clone());
        Ok(p)
    }

    /// Runs `op` on `inputs`, allocating and returning its outputs.
    pub fn apply(&self, op: impl Into<Op>, inputs: &[TensorArg]) -> Result<Vec<DeviceTensor>> {
        let op = op.into();
        let descs: Vec<TensorDesc> = inputs.iter().map(|a| a.desc.clone()).collect();
        let outs = op.infer(&descs)?;
        let tensors = outs
            .into_iter()
            .map(|desc| {
                Ok(DeviceTensor {
                    buffer: self.backend.alloc(desc.bytes())?,
                    desc,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let out_args: Vec<TensorArg> = tensors.iter().map(|t| t.arg()).collect();
        self.launch(&op, inputs, &out_args)?;
        Ok(tensors)
    }

    /// Runs a single-output op.
    pub fn apply1(&self, op: impl Into<Op>, inputs: &[TensorArg]) -> Result<DeviceTensor> {
        Ok(self.apply(op, inputs)?.swap_remove(0))
    }

    /// Runs `op` writing into caller-provided outputs.
    pub fn launch(&self, op: &Op, inputs: &[TensorArg], outputs: &[TensorArg]) -> Result<()> {
        let prepared = self.prepared(op)?;
        self.backend.launch(&prepared, inputs, outputs)
    }

    /// Allocates a zero-filled tensor.
    pub fn zeros(&self, desc: TensorDesc) -> Result<DeviceTensor> {
        let buffer = self.backend.alloc(desc.bytes())?;
        self.backend.write(&buffer, 0, &vec![0u8; desc.bytes()])?;
        Ok(DeviceTensor { buffer, desc })
    }

    /// Allocates a tensor whose bytes the caller writes next (with [`Executor::write`]).
    pub fn alloc(&self, desc: TensorDesc) -> Result<DeviceTensor> {
        let buffer = self.backend.alloc(desc.bytes())?;
        Ok(DeviceTensor { buffer, desc })
    }

    /// Writes host `bytes` into `tensor` from byte `offset` on.
    pub fn write(&self, tensor: &DeviceTensor, offset: usize, bytes: &[u8]) -> Result<()> {
        self.backend.write(&tensor.buffer, offset, bytes)
    }

    /// Uploads host bytes as a tensor.
    pub fn upload(&self, desc: TensorDesc, bytes: &[u8]) -> Result<DeviceTensor> {
        debug_assert_eq!(desc.bytes(), bytes.len());
        let buffer = self.backend.alloc(bytes.len())?;
        self.backend.write(&buffer, 0, bytes)?;
        Ok(DeviceTensor { buffer, desc })
    }

    /// Uploads u32 values (ids, positions, slots).
    pub fn upload_u32(&self, values: &[u32]) -> Result<DeviceTensor> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.upload(TensorDesc::new(DType::U32, [values.len()]), &bytes)
    }

    /// Uploads f32 values with a shape.
    pub fn upload_f32(&self, shape: &[usize], values: &[f32]) -> Result<DeviceTensor> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.upload(TensorDesc::new(DType::F32, shape.to_vec()), &bytes)
    }

    /// Reads a view back as f32 values (F32 or BF16 storage).
    pub fn read_f32(&self, arg: &TensorArg) -> Result<Vec<f32>> {
        let mut bytes = vec![0u8; arg.desc.bytes()];
        self.backend.read(arg.buffer, arg.offset, &mut bytes)?;
        Ok(match arg.desc.dtype {
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| concord_core::convert::bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        })
    }

    /// Reads a view back as u32 values.
    pub fn read_u32(&self, arg: &TensorArg) -> Result<Vec<u32>> {
        let mut bytes = vec![0u8; arg.desc.bytes()];
        self.backend.read(arg.buffer, arg.offset, &mut bytes)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}
