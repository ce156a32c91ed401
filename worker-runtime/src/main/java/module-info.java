/**
 * The Slipway worker runtime: reads configuration, discovers stage plugins, assembles the
 * pipeline, serves JobService over gRPC and registers with the orchestrator.
 */
module dev.slipway.worker.runtime {
  requires dev.slipway.worker.api;
  requires dev.slipway.proto;
  requires io.grpc;
  requires io.grpc.stub;
  requires io.grpc.services;
  requires io.grpc.netty.shaded;
  requires io.grpc.util;
  requires typesafe.config;
  requires org.slf4j;
  requires ch.qos.logback.classic;
  requires ch.qos.logback.core;
  requires info.picocli;
  requires io.github.cdimascio.dotenv.java;
  requires io.prometheus.metrics.core;
  requires io.prometheus.metrics.model;
  requires io.prometheus.metrics.exporter.httpserver;
  // sun.misc.Signal: drain on SIGTERM and still exit 0.
  requires jdk.unsupported;
  // The JVM's uptime, for the start-up phases logged at debug.
  requires java.management;

  // Stage plugins: found in the boot layer and in each plugin folder's layer.
  uses dev.slipway.worker.api.StageFactory;

  exports dev.slipway.worker.runtime;
  exports dev.slipway.worker.runtime.config;
  exports dev.slipway.worker.runtime.job;
  exports dev.slipway.worker.runtime.plugins;
  exports dev.slipway.worker.runtime.pipeline;
  exports dev.slipway.worker.runtime.registration;
  exports dev.slipway.worker.runtime.logging;
  exports dev.slipway.worker.runtime.errors;
  exports dev.slipway.worker.runtime.grpc;
  exports dev.slipway.worker.runtime.cli;
  exports dev.slipway.worker.runtime.metrics;
  exports dev.slipway.worker.runtime.security;

  // picocli reads and sets the command classes' annotated fields reflectively.
  opens dev.slipway.worker.runtime.cli to info.picocli;
}
