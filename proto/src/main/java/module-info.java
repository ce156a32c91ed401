/** The generated gRPC contract between Slipway workers and orchestrators. */
module dev.slipway.proto {
  requires transitive com.google.protobuf;
  requires transitive io.grpc;
  requires transitive io.grpc.stub;
  requires io.grpc.protobuf;
  requires com.google.common;

  exports dev.slipway.proto.v1;
}
