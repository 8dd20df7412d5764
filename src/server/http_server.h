// The HTTP face of the server: OpenAI's routes and llama-server's extras on cpp-httplib, API
// keys, errors as OpenAI shapes them, SSE. It parses and checks requests, hands them to the
// engine as jobs and writes what comes back; it never touches the model's state.
#pragma once

#include <memory>

#include "model/model.h"
#include "server/server_options.h"

namespace kvc::server {

class HttpServer {
 public:
  HttpServer(const Model& model, const ServerOptions& options);
  ~HttpServer();

  // Binds host:port (port 0: any free one); returns the port, or throws kvc::Error.
  int bind();
  // Serves until stop(); returns false if the listener failed.
  bool run();
  // Thread-safe: ends run().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvc::server
