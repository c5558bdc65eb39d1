#include "backend/viz/page_shell.h"

#include "backend/viz/html_text.h"

namespace stickyproxy::backend {
namespace {

constexpr std::string_view kSharedCss =
    "*{box-sizing:border-box}"
    "body{margin:0;padding:16px 20px 32px;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#222;background:#fff}"
    "header h1{font-size:20px;margin:0 0 2px}"
    "header p{margin:0 0 12px;color:#555}"
    "#tip{position:fixed;left:0;top:0;z-index:10;width:max-content;max-width:320px;padding:6px 9px;"
    "background:rgba(255,255,255,.97);border:1px solid #888;border-radius:4px;"
    "box-shadow:0 2px 6px rgba(0,0,0,.25);pointer-events:none;font-size:13px;overflow-wrap:anywhere}"
    "#tip strong{display:block}"
    ".legend{display:flex;flex-wrap:wrap;align-items:center;gap:4px 12px;margin:6px 0;font-size:13px}"
    ".sw{display:inline-flex;align-items:center;gap:5px}"
    ".sw i{display:inline-block;width:14px;height:14px;border:1px solid #999}";

// Shows the tooltip near the pointer, flipped to the other side when it would leave the window.
// The key lets a page rebuild the tooltip only when the pointer moves onto another item.
constexpr std::string_view kTooltipScript =
    "var tip=document.getElementById('tip'),tipKey=null;"
    "function tipMove(e){var w=tip.offsetWidth,h=tip.offsetHeight,x=e.clientX+14,y=e.clientY+14;"
    "if(x+w>innerWidth)x=Math.max(0,e.clientX-w-14);if(y+h>innerHeight)y=Math.max(0,e.clientY-h-14);"
    "tip.style.left=x+'px';tip.style.top=y+'px';}"
    "function tipShow(e,lines,key){if(key!==tipKey){tipKey=key;tip.replaceChildren();"
    "lines.forEach(function(s,i){if(!s)return;var d=document.createElement(i?'div':'strong');"
    "d.textContent=s;tip.appendChild(d);});tip.hidden=false;}tipMove(e);}"
    "function tipHide(){tipKey=null;tip.hidden=true;}";

}  // namespace

void appendPageStart(std::string* out, std::string_view title, std::string_view subtitle,
                     std::string_view css) {
  *out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>";
  appendHtmlEscaped(out, title);
  *out += "</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>";
  *out += kSharedCss;
  *out += css;
  *out += "</style>\n</head>\n<body>\n<header><h1>";
  appendHtmlEscaped(out, title);
  *out += "</h1>";
  if (!subtitle.empty()) {
    *out += "<p>";
    appendHtmlEscaped(out, subtitle);
    *out += "</p>";
  }
  *out += "</header>\n";
}

void appendPageEnd(std::string* out, std::string_view json, std::string_view script) {
  *out +=
      "<div id=\"tip\" role=\"tooltip\" hidden></div>\n<script type=\"application/json\" id=\"viz-data\">";
  *out += json;
  *out += "</script>\n<script>\n(function(){'use strict';";
  *out += kTooltipScript;
  *out += script;
  *out += "})();\n</script>\n</body>\n</html>\n";
}

}  // namespace stickyproxy::backend
