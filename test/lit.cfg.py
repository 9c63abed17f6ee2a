# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "refold"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".onnxtxt", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.refold_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%refold_src", config.refold_src_root))
config.substitutions.append(("%refold_tools", config.refold_tools_dir))
config.substitutions.append(("%refold_build", config.refold_obj_root))
# Projects built against the installed package use refold's own compilers
# (a sanitized librefold needs its sanitizer runtime at link time).
config.substitutions.append(("%refold_compilers",
                             "-DCMAKE_C_COMPILER=%s -DCMAKE_CXX_COMPILER=%s"
                             % (config.refold_c_compiler, config.refold_cxx_compiler)))
# Python with the onnx package (Debian's), used to write binary fixtures.
config.substitutions.append(("%python_onnx", "/usr/bin/python3"))

# The x86 vector extensions this CPU runs, for the C kernels' wider paths.
try:
    with open("/proc/cpuinfo") as cpuinfo:
        flags = next((l.split(":", 1)[1].split() for l in cpuinfo if l.startswith("flags")), [])
except OSError:
    flags = []
for flag in ("avx2", "avx512f"):
    if flag in flags:
        config.available_features.add("cpu-" + flag)

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
# `not` and `count` at the start of a RUN line are found on PATH.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.refold_tools_dir, append_path=True)

tool_dirs = [config.refold_tools_dir, config.llvm_tools_dir]
tools = ["refold", "refold-opt", "refold-translate"]
llvm_config.add_tool_substitutions(tools, tool_dirs)
