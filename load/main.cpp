// stickyproxy-load: plays simulated users through the bundled app's whole flow against a running
// proxy and judges the users' criteria (no session errors, p99 under 3 s, no upload failures,
// host CPU under 80%); with --find-capacity, the most users that still hold them. See loadUsage().
#include <signal.h>
#include <uv.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "load/app_dataset.h"
#include "load/load_options.h"
#include "load/load_report.h"
#include "load/load_run.h"
#include "load/process_sampler.h"
#include "proxy/net/loop_context.h"

using namespace stickyproxy;
using namespace stickyproxy::load;

namespace {

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) std::fprintf(stderr, "stickyproxy-load: cannot write %s\n", path.c_str());
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  auto options = parseLoadOptions(argc, argv, &error);
  if (!options) {
    if (!error.empty()) std::fprintf(stderr, "stickyproxy-load: %s\n", error.c_str());
    std::fputs(loadUsage(), error.empty() ? stdout : stderr);
    return error.empty() ? 0 : 2;
  }
  auto data = AppDataset::load(options->data_dir, &error);
  if (!data) {
    std::fprintf(stderr, "stickyproxy-load: %s\n", error.c_str());
    return 2;
  }
  std::optional<AppDataset> chunked_data;
  if (!options->chunked_data_dir.empty()) {
    chunked_data = AppDataset::load(options->chunked_data_dir, &error);
    if (!chunked_data) {
      std::fprintf(stderr, "stickyproxy-load: %s\n", error.c_str());
      return 2;
    }
    if (chunked_data->wards() != data->wards()) {
      // Fine for the app; said so the ward counts in the answers are not a surprise.
      std::printf("stickyproxy-load: note: %s has %zu wards, %s %zu\n", options->chunked_data_dir.c_str(),
                   chunked_data->wards(), options->data_dir.c_str(), data->wards());
    }
  }
  pid_t proxy_pid = options->proxy_pid;
  if (proxy_pid == 0) {
    auto found = findListeningPid(options->target.port());
    if (found) proxy_pid = *found;
  }
  signal(SIGPIPE, SIG_IGN);

  std::printf("stickyproxy-load: %s%u users against %s, %s, ramp %.0f s, think %.1f-%.1f s; data %s (%zu wards, "
              "zip %zu bytes)%s%s; proxy pid %s\n",
              options->find_capacity ? "from " : "", options->users, options->target_text.c_str(),
              options->find_capacity ? ("+" + std::to_string(options->step_users) + " every " +
                                        std::to_string(static_cast<int>(options->step_seconds)) + " s up to " +
                                        std::to_string(options->max_users)).c_str()
                                     : (std::to_string(static_cast<int>(options->duration)) + " s").c_str(),
              options->ramp, options->think_min, options->think_max, options->data_dir.c_str(), data->wards(),
              data->shapefile().content.size, chunked_data ? ", every 5th user: " : "",
              chunked_data ? options->chunked_data_dir.c_str() : "",
              proxy_pid > 0 ? std::to_string(proxy_pid).c_str() : "unknown (no process figures)");
  std::fflush(stdout);

  uv_loop_t loop;
  uv_loop_init(&loop);
  int status = 0;
  {
    LoopContext context(&loop);
    ProcessSampler sampler(proxy_pid);
    auto run = std::make_unique<LoadRun>(&loop, *options, &*data, chunked_data ? &*chunked_data : nullptr, &sampler);
    run->start();
    uv_run(&loop, UV_RUN_DEFAULT);

    LoadReport report(*options, *run, sampler, data->wards());
    bool passed = report.print(stdout);
    if (!options->json_path.empty() && !writeFile(options->json_path, report.json())) status = 2;
    if (!options->svg_path.empty() && !writeFile(options->svg_path, report.svg())) status = 2;
    if (status == 0) status = passed ? 0 : 1;
    std::fflush(stdout);
    run.reset();  // the users' connections and timers close on the loop
    uv_run(&loop, UV_RUN_DEFAULT);
    context.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return status;
}
