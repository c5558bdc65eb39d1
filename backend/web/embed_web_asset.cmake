# Writes a C++ source defining stickyproxy::backend::webIndexHtml() from an HTML file.
#
#   cmake -DINPUT=backend/web/index.html -DOUTPUT=<build>/backend/web/web_assets.cpp -P embed_web_asset.cmake
#
# The bytes go in as a hex array rather than a string literal: no escaping rules to get wrong,
# and no compiler limit on string literal length.
if(NOT DEFINED INPUT OR NOT DEFINED OUTPUT)
  message(FATAL_ERROR "embed_web_asset.cmake: pass -DINPUT=<file> -DOUTPUT=<file.cpp>")
endif()

file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR byte_count "${hex_length} / 2")
# Sixteen bytes per line keeps the generated file readable in a debugger.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    " bytes "${bytes}")

file(WRITE "${OUTPUT}"
"// Generated from ${INPUT} by backend/web/embed_web_asset.cmake. Do not edit.
#include \"backend/web/web_assets.h\"

namespace stickyproxy::backend {
namespace {

// One extra NUL so the array is never empty; it is not part of the page.
constexpr unsigned char kIndexHtml[] = {
    ${bytes}0x00};

}  // namespace

std::string_view webIndexHtml() {
  return std::string_view(reinterpret_cast<const char*>(kIndexHtml), ${byte_count});
}

}  // namespace stickyproxy::backend
")
