#!/usr/bin/env python3
"""Where an emitted model's time goes, step by step.

Emits the C of a model (refold -O2, prefix "model"), wraps every step of
model_run_with_workspace in a clock, compiles it (gcc -O3 -march=native)
and runs it; prints the steps by total time with their kernel, the time per
kernel, and the whole run. The model's own code is unchanged but for the
clocks, which cost about 50 ns a step.

usage: bench/c_profile.py MODEL.onnx [--runs N] [--top K] [--dim NAME=VALUE]...
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def instrument(source):
    """Wraps each commented step of model_run_with_workspace in a clock."""
    start = source.index("int model_run_with_workspace(")
    body_start = source.index("{", start) + 1
    body_end = source.index("\n}\n", body_start)
    lines = source[body_start:body_end].split("\n")
    out, steps, current = [], [], None

    def close():
        if current is not None:
            out.append("  clock_gettime(CLOCK_MONOTONIC, &rf_t1);")
            out.append(f"  rf_prof[{len(steps) - 1}] += (double)(rf_t1.tv_sec - rf_t0.tv_sec) * 1e3 + "
                       "(double)(rf_t1.tv_nsec - rf_t0.tv_nsec) * 1e-6;")

    for line in lines:
        m = re.match(r"  /\* (.*) \*/$", line)
        if m or line.strip() == "return 0;":
            close()
            current = None
        if m:
            steps.append([m.group(1), None])
            current = len(steps) - 1
            out.append(line)
            out.append("  clock_gettime(CLOCK_MONOTONIC, &rf_t0);")
            continue
        k = re.match(r"\s+(?:\{.*?)?(rf_[a-z0-9_]+)\(", line)
        if current is not None and k and steps[current][1] is None:
            steps[current][1] = k.group(1)
        out.append(line)
    header = ("#define _POSIX_C_SOURCE 199309L\n#include <time.h>\n")
    prof = (f"double rf_prof[{max(len(steps), 1)}];\n"
            "static struct timespec rf_t0, rf_t1;\n")
    text = header + source[:start] + prof + source[start:body_start] + "\n".join(out) + source[body_end:]
    return text, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--dim", action="append", default=[])
    args = ap.parse_args()
    refold = os.environ.get("REFOLD", os.path.join(ROOT, "build/bin/refold"))
    with tempfile.TemporaryDirectory() as work:
        c_file = os.path.join(work, "model.c")
        cmd = [refold, args.model, "-o", c_file, "--c-prefix", "model", "--quiet"]
        for d in args.dim:
            cmd += ["--dim", d]
        subprocess.run(cmd, check=True)
        with open(c_file) as f:
            text, steps = instrument(f.read())
        with open(c_file, "w") as f:
            f.write(text)
        driver = os.path.join(work, "driver.c")
        with open(driver, "w") as f:
            f.write(f"""#include <stdio.h>
#include <stdlib.h>
#include "model.h"
extern double rf_prof[];
int main(void) {{
  const void *in[model_NUM_INPUTS > 0 ? model_NUM_INPUTS : 1];
  void *out[model_NUM_OUTPUTS > 0 ? model_NUM_OUTPUTS : 1];
  int i, r;
  size_t k;
  for (i = 0; i < model_NUM_INPUTS; ++i) {{
    float *x = malloc(model_input_sizes[i] * 8 + 8);
    for (k = 0; k < model_input_sizes[i]; ++k) x[k] = (float)rand() / (float)RAND_MAX - 0.5f;
    in[i] = x;
  }}
  for (i = 0; i < model_NUM_OUTPUTS; ++i) out[i] = malloc(model_output_sizes[i] * 8 + 8);
  for (r = 0; r < 3; ++r) model_run(in, out);
  for (i = 0; i < {len(steps)}; ++i) rf_prof[i] = 0;
  for (r = 0; r < {args.runs}; ++r) model_run(in, out);
  for (i = 0; i < {len(steps)}; ++i) printf("%.6f\\n", rf_prof[i] / {args.runs});
  return 0;
}}
""")
        exe = os.path.join(work, "profile")
        subprocess.run(["gcc", "-std=c99", "-O3", "-march=native", "-I", work, "-o", exe, c_file, driver, "-lm"],
                       check=True)
        times = [float(t) for t in subprocess.run([exe], check=True, capture_output=True,
                                                  text=True).stdout.split()]
    total = sum(times)
    print(f"{os.path.basename(args.model)}: {total:.2f} ms per run over {len(steps)} steps "
          f"(mean of {args.runs} runs)")
    by_kernel = collections.Counter()
    for (_, kernel), t in zip(steps, times):
        by_kernel[kernel or "?"] += t
    for kernel, t in by_kernel.most_common():
        print(f"  {kernel:28s} {t:8.3f} ms {100 * t / total:5.1f}%")
    print(f"top {args.top} steps:")
    order = sorted(range(len(steps)), key=lambda i: -times[i])[:args.top]
    for i in order:
        print(f"  {times[i]:7.3f} ms {100 * times[i] / total:5.1f}%  #{i:<4d} {steps[i][1] or '?':22s} {steps[i][0][:90]}")


if __name__ == "__main__":
    sys.exit(main())
