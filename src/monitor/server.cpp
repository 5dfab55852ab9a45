#include "monitor/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace ternion::monitor {

struct MetricsServer::Impl {
  httplib::Server http;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  Snapshot latest;  // guarded by mu
};

MetricsServer::MetricsServer(int port, const std::string& host) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.http.Get("/metrics", [&im](const httplib::Request&, httplib::Response& res) {
    Snapshot s;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      s = im.latest;
    }
    res.set_content(prometheus_text(s), kPrometheusContentType);
  });
  im.http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ternion: metrics at /metrics\n", "text/plain");
  });
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second job on
  // the node would bind the same port silently and share its scrapes.
  im.http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (port == 0) {
    im.port = im.http.bind_to_any_port(host);
  } else if (im.http.bind_to_port(host, port)) {
    im.port = port;
  } else {
    im.port = -1;
  }
  TN_CHECK(im.port > 0, "monitor", "cannot listen on ", host, ":", port,
           " (in use by another process, or no permission); set monitor.port to a free port");
  im.thread = std::thread([&im] { im.http.listen_after_bind(); });
  // stop() is a no-op until the server runs: wait for it, so the destructor can end it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!im.http.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

MetricsServer::~MetricsServer() {
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const { return impl_->port; }

void MetricsServer::update(const Snapshot& s) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->latest = s;
}

}  // namespace ternion::monitor
