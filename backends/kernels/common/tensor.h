/* Tensor arguments: every tensor is passed as a byte pointer to its buffer plus the byte
 * offset of its first element (OpenCL has no pointer arithmetic on the host side; CUDA and
 * HIP may pass offset 0 with an advanced pointer). Kernels are 1-D: the host rounds the
 * global size up to whole work-groups and every kernel guards its index. */

/* Parameter-list entries for an input and an output tensor named `name`. */
#define IN_TENSOR(name) GLOBAL const u8 *name##_buf, u64 name##_off
#define OUT_TENSOR(name) GLOBAL u8 *name##_buf, u64 name##_off
/* The tensor's first byte. */
#define IN_BYTES(name) ((GLOBAL const u8 *)(name##_buf + name##_off))
#define OUT_BYTES(name) ((GLOBAL u8 *)(name##_buf + name##_off))
/* The tensor as typed elements (its offset is a multiple of the element size). */
#define IN_AS(type, name) ((GLOBAL const type *)(name##_buf + name##_off))
#define OUT_AS(type, name) ((GLOBAL type *)(name##_buf + name##_off))
