"""Checks of the Triton kernels against the float32 reference, for any device.

On a machine without a GPU: `TRITON_INTERPRET=1 PYTHONPATH=tests python -m support.triton_check` (the tests do
this in a subprocess). bench/gpu.py calls check("cuda") on a GPU. Prints one JSON line per case. A test helper,
not part of the installed package.
"""

import json
import sys

import torch

from robustbench_bytes.kernels.reference import selective_scan_ref, selective_state_update_ref
from support.scan_inputs import OPTIONS, scan_inputs

# mamba_ssm's tolerances for its scan tests (rtol, atol)
TOLERANCE = {torch.float32: (6e-4, 2e-3), torch.bfloat16: (3e-2, 5e-2)}

SCAN_CASES = [
    # (name, b, d, n, L, groups, options, dtype, block_l)
    ("fp32-all-options-grouped", 2, 8, 4, 21, 2, OPTIONS, torch.float32, 8),
    ("fp32-plain-L1", 1, 4, 3, 1, 0, (), torch.float32, 8),
    ("fp32-softplus-z-n16", 1, 4, 16, 12, 1, ("delta_softplus", "z", "D"), torch.float32, 16),
    ("bf16-all-options", 1, 8, 4, 13, 0, OPTIONS, torch.bfloat16, 8),
]


def _to(kw, device):
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}


def _close(actual, expected, dtype):
    rtol, atol = TOLERANCE[dtype]
    err = (actual.float().cpu() - expected.float().cpu()).abs()
    ok = bool((err <= atol + rtol * expected.float().cpu().abs()).all())
    return ok, float(err.max()) if err.numel() else 0.0


def check_scan(device, name, b, d, n, L, groups, options, dtype, block_l):
    from robustbench_bytes.kernels.triton_scan import selective_scan_triton

    kw = scan_inputs(b, d, n, L, groups=groups, options=options, seed=L, dtype=dtype)
    ref_out, ref_last = selective_scan_ref(**kw, return_last_state=True)
    out, last = selective_scan_triton(**_to(kw, device), return_last_state=True, block_l=block_l)
    ok_out, err_out = _close(out, ref_out, dtype)
    ok_last, err_last = _close(last, ref_last, torch.float32 if dtype == torch.float32 else dtype)
    return {"case": name, "ok": ok_out and ok_last and out.dtype == dtype,
            "max_abs_err_out": err_out, "max_abs_err_last_state": err_last}


def check_resume(device, k=5):
    from robustbench_bytes.kernels.triton_scan import selective_scan_triton

    kw = _to(scan_inputs(1, 4, 4, 11, groups=1, seed=1), device)
    full, full_last = selective_scan_triton(**kw, return_last_state=True, block_l=4)
    seq = ("u", "delta", "z", "B", "C")
    head = {key: (v[..., :k] if key in seq else v) for key, v in kw.items()}
    tail = {key: (v[..., k:] if key in seq else v) for key, v in kw.items()}
    out1, mid = selective_scan_triton(**head, return_last_state=True, block_l=4)
    out2, last = selective_scan_triton(**dict(tail, initial_state=mid), return_last_state=True, block_l=4)
    ok1, err1 = _close(torch.cat([out1, out2], -1), full, torch.float32)
    ok2, err2 = _close(last, full_last, torch.float32)
    return {"case": f"resume-at-{k}", "ok": ok1 and ok2, "max_abs_err_out": err1, "max_abs_err_last_state": err2}


def check_state_update(device, groups, options, dtype=torch.float32):
    from robustbench_bytes.kernels.triton_scan import selective_state_update_triton

    kw = scan_inputs(2, 8, 4, 1, groups=groups, options=options, seed=3, dtype=dtype)
    state = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(4))
    args = dict(x=kw["u"][..., 0], dt=kw["delta"][..., 0], A=kw["A"], B=kw["B"][..., 0], C=kw["C"][..., 0],
                D=kw["D"], z=None if kw["z"] is None else kw["z"][..., 0], dt_bias=kw["delta_bias"],
                dt_softplus=kw["delta_softplus"])
    ref_state = state.clone()
    ref = selective_state_update_ref(ref_state, **args)
    dev_state = state.to(device)
    out = selective_state_update_triton(dev_state, **_to(args, device))
    ok1, err1 = _close(out, ref, dtype)
    ok2, err2 = _close(dev_state, ref_state, torch.float32)
    return {"case": f"state-update-g{groups}-{'+'.join(options) or 'plain'}-{str(dtype)[6:]}", "ok": ok1 and ok2,
            "max_abs_err_out": err1, "max_abs_err_state": err2}


def check_nan(device):
    from robustbench_bytes.kernels.triton_scan import selective_scan_triton

    kw = scan_inputs(1, 4, 3, 9, seed=5)
    kw["u"][0, 1, 3] = float("nan")
    out = selective_scan_triton(**_to(kw, device)).cpu()
    ok = bool(torch.isnan(out[0, 1, 3:]).all() and torch.isfinite(out[0, 0]).all())
    return {"case": "nan-propagates", "ok": ok}


def check(device="cuda"):
    results = [check_scan(device, *case) for case in SCAN_CASES]
    results.append(check_resume(device))
    results.append(check_state_update(device, 0, OPTIONS))
    results.append(check_state_update(device, 2, ()))
    results.append(check_state_update(device, 1, ("delta_softplus", "z"), torch.bfloat16))
    results.append(check_nan(device))
    return results


def main(argv):
    device = argv[1] if len(argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")
    results = check(device)
    for r in results:
        print(json.dumps(r))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
