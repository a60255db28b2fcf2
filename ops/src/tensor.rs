use concord_core::{DType, Error, Result};

use crate::Buffer;

/// Element type and shape of a dense row-major tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorDesc {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
}

impl TensorDesc {
    /// A descriptor from a dtype and a shape.
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorDesc {
            dtype,
            shape: shape.into(),
        }
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.numel() * self.dtype.size_in_bytes()
    }
    /// Fails unless the rank is `rank`; `what` names the operand in the message.
    pub fn expect_rank(&self, rank: usize, what: &str) -> Result<&Self> {
        if self.shape.len() != rank {
            return Err(Error::invalid(format!(
                "{what}: expected rank {rank}, got shape {:?}",
                self.shape
            )));
        }
        Ok(self)
    }
    /// Fails unless the dtype is one of `allowed`.
    pub fn expect_dtype(&self, allowed: &[DType], what: &str) -> Result<&Self> {
        if !allowed.contains(&self.dtype) {
            return Err(Error::invalid(format!(
                "{what}: dtype {} not in {allowed:?}",
                self.dtype
            )));
        }
        Ok(self)
    }
    /// Fails unless dimension `axis` equals `size`.
    pub fn expect_dim(&self, axis: usize, size: usize, what: &str) -> Result<&Self> {
        if self.shape.get(axis) != Some(&size) {
            return Err(Error::invalid(format!(
                "{what}: expected dimension {axis} = {size}, got shape {:?}",
                self.shape
            )));
        }
        Ok(self)
    }
}

/// A view of (part of) a buffer as a dense tensor: what an op reads or writes.
#[derive(Debug, Clone)]
pub struct TensorArg<'a> {
    /// The buffer holding the data.
    pub buffer: &'a Buffer,
    /// Byte offset of the first element inside the buffer.
    pub offset: usize,
    /// Element type and shape.
    pub desc: TensorDesc,
}

impl<'a> TensorArg<'a> {
    /// A view of a whole buffer, or of its start.
    pub fn new(buffer: &'a Buffer, dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorArg {
            buffer,
            offset: 0,
            desc: TensorDesc::new(dtype, shape),
        }
    }
    /// The same view moved `rows` rows into the buffer (rows of the given descriptor's
    /// trailing dimensions), with `count` rows.
    pub fn rows(&self, first: usize, count: usize) -> Self {
        let row_elems: usize = self.desc.shape[1..].iter().product();
        let mut shape = self.desc.shape.clone();
        shape[0] = count;
        TensorArg {
            buffer: self.buffer,
            offset: self.offset + first * row_elems * self.desc.dtype.size_in_bytes(),
            desc: TensorDesc::new(self.desc.dtype, shape),
        }
    }
    /// The same bytes seen with another shape of the same element count.
    pub fn reshaped(&self, shape: impl Into<Vec<usize>>) -> Self {
        let desc = TensorDesc::new(self.desc.dtype, shape);
        debug_assert_eq!(desc.numel(), self.desc.numel());
        TensorArg {
            buffer: self.buffer,
            offset: self.offset,
            desc,
        }
    }
    /// Fails if the view reaches past the end of its buffer.
    pub fn check_bounds(&self) -> Result<()> {
        let end = self.offset + self.desc.bytes();
        if end > self.buffer.len() {
            return Err(Error::invalid(format!(
                "tensor view {:?} at byte {} ends at {end}, past the buffer's {} bytes",
                self.desc.shape,
                self.offset,
                self.buffer.len()
            )));
        }
        Ok(())
    }
}
