package dev.slipway.worker.runtime.grpc;

import dev.slipway.proto.v1.JobRequest;
import dev.slipway.worker.api.JobRequestView;
import dev.slipway.worker.api.PushTarget;
import dev.slipway.worker.runtime.errors.ErrorMapping;
import dev.slipway.worker.runtime.errors.RejectedJobException;
import dev.slipway.worker.runtime.job.JobManager;
import dev.slipway.worker.runtime.security.AccessPolicy;
import dev.slipway.worker.runtime.security.Caller;
import dev.slipway.worker.runtime.security.CallerRegistry;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one gate every call passes, before any job work: who is calling (bearer token or mTLS
 * certificate), whether the method needs credentials, and, for a job, whether the caller may
 * build that repository and push where the pipeline would push. Refusals: no or unknown
 * credentials {@code UNAUTHENTICATED}; a known caller outside its scopes {@code
 * PERMISSION_DENIED}, naming the rule. The caller then travels with the call in {@link #CALLER}.
 */
public final class CallerInterceptor implements ServerInterceptor {
  private static final Logger LOG = LoggerFactory.getLogger(CallerInterceptor.class);

  /** The caller of the current call. */
  public static final Context.Key<Caller> CALLER = Context.keyWithDefault("slipway-caller",
      Caller.UNAUTHENTICATED);

  /** Why the current call's caller may not clone a URL, or empty when it may. */
  public static final Context.Key<java.util.function.Function<String, Optional<String>>>
      REPOSITORY_CHECK = Context.keyWithDefault("slipway-repository-check",
          url -> Optional.of("no caller"));

  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final CallerRegistry callers;
  private final AccessPolicy policy;
  private final List<String> openMethods;
  private final JobManager jobs;

  public CallerInterceptor(CallerRegistry callers, AccessPolicy policy, List<String> openMethods,
      JobManager jobs) {
    this.callers = callers;
    this.policy = policy;
    this.openMethods = List.copyOf(openMethods);
    this.jobs = jobs;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    Caller caller;
    if (!callers.enabled()) {
      caller = Caller.ANONYMOUS;
    } else {
      Optional<String> bearer;
      String header = headers.get(AUTHORIZATION);
      if (header == null) {
        bearer = Optional.empty();
      } else if (header.regionMatches(true, 0, "Bearer ", 0, 7) && header.length() > 7) {
        bearer = Optional.of(header.substring(7).strip());
      } else {
        return refuse(call, method, ErrorMapping.unauthenticated("the authorization header must"
            + " be 'Bearer <token>'"));
      }
      Optional<SSLSession> tls =
          Optional.ofNullable(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
      CallerRegistry.Identification id = callers.identify(bearer, tls);
      if (id instanceof CallerRegistry.Known known) {
        caller = known.caller();
      } else if (id instanceof CallerRegistry.Unknown unknown) {
        return refuse(call, method, ErrorMapping.unauthenticated("the call carries "
            + unknown.what() + "; use the token or certificate this worker's operator gave you"));
      } else if (isOpen(method)) {
        caller = Caller.UNAUTHENTICATED;
      } else {
        return refuse(call, method, ErrorMapping.unauthenticated("this worker requires"
            + " credentials: send 'authorization: Bearer <token>' metadata or a client"
            + " certificate"));
      }
    }
    Caller who = caller;
    Context context = Context.current().withValue(CALLER, caller)
        .withValue(REPOSITORY_CHECK, url -> repositoryRefusal(who, url));
    ServerCall.Listener<Q> delegate = Contexts.interceptCall(context, call, headers, next);
    if (call.getMethodDescriptor().getRequestMarshaller() instanceof io.grpc.MethodDescriptor
        .PrototypeMarshaller<?> m && m.getMessagePrototype() instanceof JobRequest) {
      return new ScopeCheck<>(delegate, call, caller, method);
    }
    return delegate;
  }

  /** Why {@code caller} may not clone {@code url}: the same rules as its jobs' repo_url. */
  private Optional<String> repositoryRefusal(Caller caller, String url) {
    AccessPolicy.Normalisation normalised = AccessPolicy.normaliseRepository(url);
    if (normalised.url().isEmpty()) {
      return Optional.of(url + " cannot be matched against the allowed repositories: "
          + normalised.refusal());
    }
    return policy.checkRepository(caller, normalised.url().get());
  }

  private boolean isOpen(String method) {
    String service = method.substring(0, Math.max(0, method.indexOf('/')));
    return openMethods.contains(method) || openMethods.contains(service);
  }

  private <Q, R> ServerCall.Listener<Q> refuse(ServerCall<Q, R> call, String method,
      Status status) {
    LOG.info("call {} from {} refused: {}: {}", method,
        call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR), status.getCode(),
        status.getDescription());
    call.close(status, new Metadata());
    return new ServerCall.Listener<>() {};
  }

  /**
   * Why a job request is refused: invalid ({@code INVALID_ARGUMENT}, with the stages' own
   * messages) or outside the caller's scopes ({@code PERMISSION_DENIED}); empty to let it in.
   */
  private Optional<Status> check(JobRequest message, Caller caller) {
    JobRequestView request;
    try {
      request = jobs.validate(ProtoMapping.toView(message), message.getStageOptionsMap());
    } catch (RejectedJobException e) {
      return Optional.of(ErrorMapping.status(e));
    }
    AccessPolicy.Normalisation normalised = AccessPolicy.normaliseRepository(request.repoUrl());
    Optional<String> url = normalised.url();
    if (url.isEmpty()) {
      return Optional.of(ErrorMapping.invalidArgument("repo_url cannot be matched against the"
          + " allowed repositories: " + normalised.refusal()));
    }
    Optional<String> denied = policy.checkRepository(caller, url.get());
    if (denied.isPresent()) {
      return Optional.of(ErrorMapping.permissionDenied(denied.get()));
    }
    List<PushTarget> targets;
    try {
      targets = jobs.pushTargets(request);
    } catch (RejectedJobException e) {
      return Optional.of(ErrorMapping.status(e));
    }
    for (PushTarget target : targets) {
      denied = policy.checkPush(caller, target);
      if (denied.isPresent()) {
        return Optional.of(ErrorMapping.permissionDenied(denied.get()));
      }
    }
    return Optional.empty();
  }

  /** Holds a job request back until it passed {@link #check}; a refused call ends there. */
  private final class ScopeCheck<Q, R> extends SimpleForwardingServerCallListener<Q> {
    private final ServerCall<Q, R> call;
    private final Caller caller;
    private final String method;
    private boolean refused;

    ScopeCheck(ServerCall.Listener<Q> delegate, ServerCall<Q, R> call, Caller caller,
        String method) {
      super(delegate);
      this.call = call;
      this.caller = caller;
      this.method = method;
    }

    @Override
    public void onMessage(Q message) {
      Optional<Status> refusal = check((JobRequest) message, caller);
      if (refusal.isPresent()) {
        refused = true;
        Status status = refusal.get();
        LOG.info("job request of caller '{}' ({}) refused: {}: {}", caller.name(), method,
            status.getCode(), status.getDescription());
        call.close(status, new Metadata());
        return;
      }
      super.onMessage(message);
    }

    @Override
    public void onHalfClose() {
      if (!refused) {
        super.onHalfClose();
      }
    }

    @Override
    public void onReady() {
      if (!refused) {
        super.onReady();
      }
    }
  }
}
