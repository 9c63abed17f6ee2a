# Writes the C kernels into a C++ header as raw string literals, so that the
# emitter carries them: cmake -DOUT=file -DDIR=ckernels -P embed.cmake
set(FILES gemm conv winograd pool elementwise data norm int8)
file(READ "${DIR}/base.h" BASE)
set(TEXT "// Generated from ckernels/ by embed.cmake.\nstatic const char kKernelBase[] = R\"rfk(${BASE})rfk\";\n")
string(APPEND TEXT "static const std::pair<const char *, const char *> kKernelFiles[] = {\n")
foreach(F ${FILES})
  file(READ "${DIR}/${F}.h" BODY)
  string(APPEND TEXT "  {\"${F}\", R\"rfk(${BODY})rfk\"},\n")
endforeach()
string(APPEND TEXT "};\n")
file(WRITE "${OUT}.tmp" "${TEXT}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
