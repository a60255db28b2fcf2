/* Bit-exact conversions between f32 and the storage formats, transcribed from
 * core/src/convert (bf16.rs, f16.rs `rne_magnitude`, fp8_e4m3.rs): integer bit arithmetic
 * plus, for the subnormal range, one f32 addition of a power of two. Also the activation
 * loads and stores: F32 or BF16 (stored as u16), chosen by a dtype code. */

/* Activation dtype codes passed by the host. */
#define DT_F32 0u
#define DT_BF16 1u

/* True for every NaN (by bits, so no compiler flag can change it). */
FN int is_nan_f32(float x) { return (F32_BITS(x) & 0x7FFFFFFFu) > 0x7F800000u; }

/* |x| by clearing the sign bit (NaN payloads kept). */
FN float abs_f32(float x) { return BITS_F32(F32_BITS(x) & 0x7FFFFFFFu); }

/* bfloat16 bits -> f32 (exact). */
FN float bf16_to_f32(u32 b) { return BITS_F32((b & 0xFFFFu) << 16); }

/* f32 -> bfloat16 bits, round to nearest even; every NaN becomes 0x7FC0. */
FN u16 f32_to_bf16(float x) {
    u32 u = F32_BITS(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
        return (u16)0x7FC0u;
    }
    return (u16)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* x rounded to the nearest bfloat16 value, as f32. */
FN float round_to_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

/* core/src/convert/f16.rs `rne_magnitude::<B, M>`: a non-negative, non-NaN f32 magnitude
 * (bits `a`) rounded to nearest even onto a format with M mantissa bits and bias B,
 * subnormals included. Unsigned arithmetic wraps exactly like Rust's wrapping_add/sub. */
FN u32 rne_magnitude(u32 a, u32 bias, u32 mant) {
    u32 shift = 23u - mant;
    u32 min_normal = (127u + 1u - bias) << 23;
    u32 r = a - ((127u - bias) << 23);
    u32 normal = (r + ((1u << (shift - 1u)) - 1u) + ((r >> shift) & 1u)) >> shift;
    u32 magic = (151u - bias - mant) << 23;
    u32 sub = F32_BITS(BITS_F32(a) + BITS_F32(magic)) - magic;
    return a < min_normal ? sub : normal;
}

/* e4m3fn byte -> f32 (exact); 0x7F and 0xFF are NaN. */
FN float e4m3_to_f32(u32 b) {
    u32 sign = (b & 0x80u) << 24;
    u32 em = b & 0x7Fu;
    u32 bits = (em << 20) + ((127u - 7u) << 23);
    if (em < 0x08u) {
        /* em * 2^-9, exact. */
        bits = F32_BITS((float)em * BITS_F32(0x3B000000u));
    }
    if (em == 0x7Fu) {
        bits = 0x7FC00000u;
    }
    return BITS_F32(sign | bits);
}

/* f32 -> e4m3fn with PTX cvt.rn.satfinite semantics: RNE, |x| >= 448 (and +-inf) -> sign|0x7E,
 * every NaN -> 0x7F. */
FN u8 f32_to_e4m3_satfinite(float x) {
    u32 u = F32_BITS(x);
    u32 sign = (u >> 24) & 0x80u;
    u32 a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) {
        return (u8)0x7Fu;
    }
    /* 0x43E00000 = 448.0f, the largest finite e4m3fn value. */
    u32 clamped = a < 0x43E00000u ? a : 0x43E00000u;
    return (u8)(sign | rne_magnitude(clamped, 7u, 3u));
}

/* Element i of an F32 or BF16 tensor, widened exactly to f32. */
FN float load_act(GLOBAL const u8 *base, u64 i, u32 dt) {
    if (dt == DT_BF16) {
        return bf16_to_f32(((GLOBAL const u16 *)base)[i]);
    }
    return ((GLOBAL const float *)base)[i];
}

/* Element i of an F32 tensor, and of a BF16 tensor widened exactly: loads whose dtype is
 * known at compile time, for loops the compiler may vectorise. */
FN float load_f32(GLOBAL const u8 *base, u64 i) { return ((GLOBAL const float *)base)[i]; }
FN float load_bf16(GLOBAL const u8 *base, u64 i) {
    return bf16_to_f32(((GLOBAL const u16 *)base)[i]);
}

/* BODY(LOAD_A) or BODY(LOAD_A, LOAD_B) with the loads for the runtime dtype codes fixed, so
 * each variant's loop has compile-time loads (the branch is taken once, outside the loop). */
#define WITH_LOADS1(DT_A, BODY)                                                               \
    do {                                                                                      \
        if ((DT_A) == DT_F32) {                                                               \
            BODY(load_f32);                                                                   \
        } else {                                                                              \
            BODY(load_bf16);                                                                  \
        }                                                                                     \
    } while (0)
#define WITH_LOADS2(DT_A, DT_B, BODY)                                                         \
    do {                                                                                      \
        if ((DT_A) == DT_F32 && (DT_B) == DT_F32) {                                           \
            BODY(load_f32, load_f32);                                                         \
        } else if ((DT_A) == DT_F32) {                                                        \
            BODY(load_f32, load_bf16);                                                        \
        } else if ((DT_B) == DT_F32) {                                                        \
            BODY(load_bf16, load_f32);                                                        \
        } else {                                                                              \
            BODY(load_bf16, load_bf16);                                                       \
        }                                                                                     \
    } while (0)

/* Stores A(v) at element i of an F32 or BF16 tensor. */
FN void store_act(GLOBAL u8 *base, u64 i, u32 dt, float v) {
    if (dt == DT_BF16) {
        ((GLOBAL u16 *)base)[i] = f32_to_bf16(v);
    } else {
        ((GLOBAL float *)base)[i] = v;
    }
}

/* A(v) kept in f32: identity for F32, RNE to BF16 for BF16. */
FN float round_act(float v, u32 dt) { return dt == DT_BF16 ? round_to_bf16(v) : v; }
