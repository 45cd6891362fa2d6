"""exp, softplus and sigmoid for numba loops that must vectorise.

Numba has no vector exp (no SVML here), so a loop calling math.exp runs one lane at a time. The float32
versions below are branch-free polynomials that LLVM turns into AVX code; they are within 2 ulp of
the correctly rounded result over the whole float32 range, and keep IEEE specials (NaN -> NaN,
-inf -> 0, +inf -> inf, overflow -> inf). float64 arguments use libm (only gradcheck runs in float64).
No fast-math flags: reassociation would break the Cody-Waite reduction below, the no-NaN/no-inf flags NaN
propagation, and 'contract' (fused multiply-add) makes the code compiled in the process and the code loaded from
numba's cache round differently (kernels/cpu_loops.py).
"""

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

_F32 = np.float32
_FLAGS = False
LOG2E = _F32(1.4426950408889634)
LN2_HI = _F32(0.693359375)  # few mantissa bits: n * LN2_HI is exact for |n| <= 128
LN2_LO = _F32(-2.12194440e-4)
EXP_MIN = _F32(-87.3)  # below: result < smallest normal float32, returned as 0
EXP_MAX = _F32(88.72284)  # log(FLT_MAX); above: inf


@intrinsic
def _int32_bits_as_float32(typingctx, i):
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@numba.njit(fastmath=_FLAGS)
def exp_f32(x):
    xc = x
    if xc < EXP_MIN:
        xc = EXP_MIN
    if xc > EXP_MAX:
        xc = EXP_MAX
    nf = np.floor(xc * LOG2E + _F32(0.5))
    r = (xc - nf * LN2_HI) - nf * LN2_LO  # |r| <= ln2/2
    p = _F32(1.0 / 5040.0)
    p = p * r + _F32(1.0 / 720.0)
    p = p * r + _F32(1.0 / 120.0)
    p = p * r + _F32(1.0 / 24.0)
    p = p * r + _F32(1.0 / 6.0)
    p = p * r + _F32(0.5)
    p = p * r + _F32(1.0)
    p = p * r + _F32(1.0)
    ni = np.int32(nf)
    top = ni > np.int32(127)  # 2^128 is not a float32: scale by 2^127, then by 2
    if top:
        ni = np.int32(127)
    res = p * _int32_bits_as_float32((ni + np.int32(127)) << np.int32(23))
    if top:
        res = res * _F32(2.0)
    if x < EXP_MIN:
        res = _F32(0.0)
    if x > EXP_MAX:
        res = _F32(np.inf)
    return res


@numba.njit(fastmath=_FLAGS)
def log1p_unit_f32(y):
    """log(1 + y) for y in [0, 1] (and NaN): 2 atanh(s) with s = y / (2 + y) <= 1/3, series to s^13."""
    s = y / (_F32(2.0) + y)
    s2 = s * s
    p = _F32(1.0 / 13.0)
    p = p * s2 + _F32(1.0 / 11.0)
    p = p * s2 + _F32(1.0 / 9.0)
    p = p * s2 + _F32(1.0 / 7.0)
    p = p * s2 + _F32(1.0 / 5.0)
    p = p * s2 + _F32(1.0 / 3.0)
    p = p * s2 + _F32(1.0)
    return _F32(2.0) * s * p


@numba.njit(fastmath=_FLAGS)
def softplus_f32(x):
    # torch's F.softplus (beta 1, threshold 20) as max(x, 0) + log1p(exp(-|x|))
    pos = x if x > _F32(0.0) else _F32(0.0)
    res = pos + log1p_unit_f32(exp_f32(-abs(x)))
    if x > _F32(20.0):
        res = x
    return res


def fexp(x):
    return math.exp(x)


def softplus(x):
    return x if x > 20.0 else math.log1p(math.exp(x))


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _is_f32(x):
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(fexp)
def _fexp(x):
    if _is_f32(x):
        return lambda x: exp_f32(x)
    return lambda x: math.exp(x)


@overload(softplus)
def _softplus(x):
    if _is_f32(x):
        return lambda x: softplus_f32(x)

    def impl(x):
        return x if x > 20.0 else math.log1p(math.exp(x))

    return impl


@overload(sigmoid)
def _sigmoid(x):
    if _is_f32(x):
        return lambda x: _F32(1.0) / (_F32(1.0) + exp_f32(-x))
    return lambda x: 1.0 / (1.0 + math.exp(-x))
