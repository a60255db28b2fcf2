/* exp, sigmoid, SiLU, softmax and the RMSNorm reciprocal root exactly as
 * core/src/numerics/math.rs (docs/numerics.md §5): the same constants (given by their bits),
 * the same operations in the same order, each one correctly rounded on its own. */

#define F32_INF BITS_F32(0x7F800000u)
#define F32_NEG_INF BITS_F32(0xFF800000u)
/* log2(e) rounded to f32. */
#define EXP_LOG2E BITS_F32(0x3FB8AA3Bu)
/* Cody-Waite ln 2 = C1 + C2: C1 = 0.693359375 (exact), C2 = -2.12194440e-4. */
#define EXP_C1 BITS_F32(0x3F318000u)
#define EXP_C2 BITS_F32(0xB95E8083u)
/* Above: +inf; below: +0.0. */
#define EXP_OVERFLOW_X BITS_F32(0x42B17218u)
#define EXP_UNDERFLOW_X BITS_F32(0xC2CFF1B5u)
/* Cephes expf coefficients, highest degree first. */
#define EXP_P0 BITS_F32(0x39506967u)
#define EXP_P1 BITS_F32(0x3AB743CEu)
#define EXP_P2 BITS_F32(0x3C088908u)
#define EXP_P3 BITS_F32(0x3D2AA9C1u)
#define EXP_P4 BITS_F32(0x3E2AAAAAu)
#define EXP_P5 BITS_F32(0x3F000000u)

/* 2^e for a normal exponent -126 <= e <= 127, from its bits (exact). */
FN float pow2_f32(i32 e) { return BITS_F32(((u32)(e + 127)) << 23); }

/* e^x (math::exp): Cody-Waite reduction, the Cephes degree-5 polynomial, scaling by 2^n with
 * one final rounding. NaN -> NaN, x > EXP_OVERFLOW_X -> +inf, x < EXP_UNDERFLOW_X -> +0.0. */
FN float exp_f32(float x) {
    if (is_nan_f32(x)) {
        return x;
    }
    if (x > EXP_OVERFLOW_X) {
        return F32_INF;
    }
    if (x < EXP_UNDERFLOW_X) {
        return 0.0f;
    }
    float n = FLOOR_F32(x * EXP_LOG2E + 0.5f);
    float r = (x - n * EXP_C1) - n * EXP_C2;
    float p = ((((EXP_P0 * r + EXP_P1) * r + EXP_P2) * r + EXP_P3) * r + EXP_P4) * r + EXP_P5;
    float y = p * (r * r) + r + 1.0f;
    i32 ni = (i32)n;
    if (ni > 127) {
        return y * pow2_f32(127) * pow2_f32(ni - 127);
    }
    if (ni < -126) {
        return y * pow2_f32(ni + 126) * pow2_f32(-126);
    }
    return y * pow2_f32(ni);
}

/* 1 / (1 + exp(-x)) (math::sigmoid). */
FN float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

/* x / (1 + exp(-x)) (math::silu): one division, not x * sigmoid(x). */
FN float silu_f32(float x) { return x / (1.0f + exp_f32(-x)); }

/* 1 / sqrt(mean_sq + eps) (math::rsqrt_for_norm). */
FN float rsqrt_for_norm(float mean_sq, float eps) { return 1.0f / SQRT_F32(mean_sq + eps); }

/* Softmax of x[0..n) in place (math::softmax_in_place): m = reduce_max; all -inf -> every
 * output +0.0; else e_i = exp(x_i - m), s = canonical sum of e, p_i = e_i / s. */
FN void softmax_in_place(GLOBAL float *x, u32 n) {
    float m = reduce_max(x, n);
    if (m == F32_NEG_INF) {
        for (u32 i = 0u; i < n; i++) {
            x[i] = 0.0f;
        }
        return;
    }
    for (u32 i = 0u; i < n; i++) {
        x[i] = exp_f32(x[i] - m);
    }
    float s;
    CANONICAL_SUM(s, n, k, x[k]);
    for (u32 i = 0u; i < n; i++) {
        x[i] = x[i] / s;
    }
}
