# CMake functions of the refold package (find_package(refold CONFIG)).
#
#   refold_optimize(OUTPUT out.onnx INPUT in.onnx [TARGET name] [LEVEL O0|O1|O2]
#                   [VERIFY] [QUANTIZE int8 [CALIBRATION path]] [DIMS NAME=VALUE...]
#                   [EXTRA_ARGS ...])
#   refold_add_model_library(TARGET MODEL in.onnx [PREFIX name] [LEVEL O0|O1|O2]
#                            [VERIFY] [QUANTIZE int8 [CALIBRATION path]]
#                            [DIMS NAME=VALUE...] [EXTRA_ARGS ...])
#
# Each runs refold as a build step that reruns only when the model, the
# calibration data or refold itself changes. refold writes its outputs
# atomically, so a failed step (a verification failure, a model it cannot
# emit) fails the build with refold's one-line message and leaves nothing.

include_guard(GLOBAL)

# The refold arguments and file dependencies shared by both functions.
function(_refold_step_arguments prefix out_args out_depends)
  set(args "")
  set(depends "$<TARGET_FILE:refold::refold-tool>" "$<TARGET_FILE:refold::refold>")
  if(DEFINED ${prefix}_LEVEL)
    if(NOT ${prefix}_LEVEL MATCHES "^O[012]$")
      message(FATAL_ERROR "refold: LEVEL must be O0, O1 or O2, got '${${prefix}_LEVEL}'")
    endif()
    list(APPEND args "-${${prefix}_LEVEL}")
  endif()
  if(${prefix}_VERIFY)
    list(APPEND args "--verify")
  endif()
  foreach(dim IN LISTS ${prefix}_DIMS)
    if(NOT dim MATCHES "^[^=]+=[0-9]+$")
      message(FATAL_ERROR "refold: DIMS entries are NAME=VALUE, got '${dim}'")
    endif()
    list(APPEND args "--dim" "${dim}")
  endforeach()
  if(DEFINED ${prefix}_QUANTIZE)
    if(NOT ${prefix}_QUANTIZE STREQUAL "int8")
      message(FATAL_ERROR "refold: QUANTIZE must be int8, got '${${prefix}_QUANTIZE}'")
    endif()
    list(APPEND args "--quantize=int8")
    if(DEFINED ${prefix}_CALIBRATION)
      get_filename_component(calibration "${${prefix}_CALIBRATION}" ABSOLUTE
                             BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
      if(NOT EXISTS "${calibration}")
        message(FATAL_ERROR "refold: CALIBRATION '${calibration}' does not exist")
      endif()
      list(APPEND args "--calibration=${calibration}")
      if(IS_DIRECTORY "${calibration}")
        # Every file of the data set; CONFIGURE_DEPENDS notices added files.
        file(GLOB_RECURSE calibration_files CONFIGURE_DEPENDS "${calibration}/*")
        list(APPEND depends ${calibration_files})
      else()
        list(APPEND depends "${calibration}")
      endif()
    endif()
  elseif(DEFINED ${prefix}_CALIBRATION)
    message(FATAL_ERROR "refold: CALIBRATION needs QUANTIZE int8")
  endif()
  list(APPEND args ${${prefix}_EXTRA_ARGS})
  set(${out_args} "${args}" PARENT_SCOPE)
  set(${out_depends} "${depends}" PARENT_SCOPE)
endfunction()

function(_refold_check_unparsed function prefix)
  if(${prefix}_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${function}: unknown arguments: ${${prefix}_UNPARSED_ARGUMENTS}")
  endif()
  if(${prefix}_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "${function}: no value given for ${${prefix}_KEYWORDS_MISSING_VALUES}")
  endif()
endfunction()

function(refold_optimize)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "VERIFY"
                        "OUTPUT;INPUT;TARGET;LEVEL;QUANTIZE;CALIBRATION" "DIMS;EXTRA_ARGS")
  _refold_check_unparsed(refold_optimize ARG)
  if(NOT ARG_OUTPUT OR NOT ARG_INPUT)
    message(FATAL_ERROR "refold_optimize: OUTPUT and INPUT are required")
  endif()
  get_filename_component(input "${ARG_INPUT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  get_filename_component(output "${ARG_OUTPUT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  _refold_step_arguments(ARG args depends)
  get_filename_component(output_dir "${output}" DIRECTORY)
  file(MAKE_DIRECTORY "${output_dir}")
  file(RELATIVE_PATH shown "${CMAKE_BINARY_DIR}" "${output}")
  add_custom_command(
    OUTPUT "${output}"
    COMMAND refold::refold-tool "${input}" -o "${output}" ${args}
    DEPENDS "${input}" ${depends}
    COMMENT "refold: optimizing ${ARG_INPUT} -> ${shown}"
    VERBATIM)
  if(ARG_TARGET)
    add_custom_target(${ARG_TARGET} ALL DEPENDS "${output}")
  endif()
endfunction()

function(refold_add_model_library target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "VERIFY"
                        "MODEL;PREFIX;LEVEL;QUANTIZE;CALIBRATION" "DIMS;EXTRA_ARGS")
  _refold_check_unparsed(refold_add_model_library ARG)
  if(NOT ARG_MODEL)
    message(FATAL_ERROR "refold_add_model_library: MODEL is required")
  endif()
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST languages)
    message(FATAL_ERROR "refold_add_model_library: the generated library is C; enable it "
                        "with project(... LANGUAGES C) or enable_language(C)")
  endif()
  if(ARG_PREFIX)
    string(MAKE_C_IDENTIFIER "${ARG_PREFIX}" prefix)
    if(NOT prefix STREQUAL ARG_PREFIX)
      message(FATAL_ERROR "refold_add_model_library: PREFIX must be a C identifier, got '${ARG_PREFIX}'")
    endif()
  else()
    string(MAKE_C_IDENTIFIER "${target}" prefix)
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  _refold_step_arguments(ARG args depends)
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/refold/${target}")
  file(MAKE_DIRECTORY "${dir}")
  add_custom_command(
    OUTPUT "${dir}/${prefix}.c" "${dir}/${prefix}.h"
    COMMAND refold::refold-tool "${model}" -o "${dir}/${prefix}.c" --c-prefix "${prefix}" ${args}
    DEPENDS "${model}" ${depends}
    COMMENT "refold: generating C for ${ARG_MODEL} (${prefix}.c, ${prefix}.h)"
    VERBATIM)
  add_library(${target} STATIC "${dir}/${prefix}.c" "${dir}/${prefix}.h")
  target_include_directories(${target} PUBLIC "$<BUILD_INTERFACE:${dir}>")
  set_target_properties(${target} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON)
  # The generated code needs libm and nothing else.
  if(NOT WIN32)
    target_link_libraries(${target} PUBLIC m)
  endif()
endfunction()
