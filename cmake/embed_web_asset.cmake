# Writes a C++ source defining `std::string_view NAMESPACE::FUNCTION()` from a file (a web page),
# so that a binary serves the page without reading files at run time.
#
#   cmake -DINPUT=backend/web/index.html -DOUTPUT=<build>/backend/web/web_assets.cpp
#         -DHEADER=backend/web/web_assets.h -DNAMESPACE=stickyproxy::backend -DFUNCTION=webIndexHtml
#         -P cmake/embed_web_asset.cmake
#
# HEADER declares the function; the generated source includes it so the compiler checks the two
# agree. The bytes go in as a hex array rather than a string literal: no escaping rules to get
# wrong, and no compiler limit on string literal length.
foreach(parameter INPUT OUTPUT HEADER NAMESPACE FUNCTION)
  if(NOT DEFINED ${parameter})
    message(FATAL_ERROR "embed_web_asset.cmake: pass -DINPUT=<file> -DOUTPUT=<file.cpp> -DHEADER=<header> "
                        "-DNAMESPACE=<namespace> -DFUNCTION=<name>")
  endif()
endforeach()

file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR byte_count "${hex_length} / 2")
# Sixteen bytes per line keeps the generated file readable in a debugger.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    " bytes "${bytes}")

file(WRITE "${OUTPUT}"
"// Generated from ${INPUT} by cmake/embed_web_asset.cmake. Do not edit.
#include \"${HEADER}\"

namespace ${NAMESPACE} {
namespace {

// One extra NUL so the array is never empty; it is not part of the page.
constexpr unsigned char kAsset[] = {
    ${bytes}0x00};

}  // namespace

std::string_view ${FUNCTION}() {
  return std::string_view(reinterpret_cast<const char*>(kAsset), ${byte_count});
}

}  // namespace ${NAMESPACE}
")
