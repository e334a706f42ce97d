/**
 * A client of the Kubernetes Container Runtime Interface (CRI v1), for the e2e suite to talk to
 * containerd's CRI plugin the way the kubelet does: gRPC over containerd's unix socket, with the
 * messages of fixtures/cri/api.proto (the subset of k8s.io/cri-api runtime/v1 the suite uses).
 */
import { credentials, loadPackageDefinition, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { join } from "node:path";
import { REPO } from "./helpers.ts";

type Call = (request: object, options: { deadline: Date }, callback: (err: ServiceError | null, response: unknown) => void) => void;

/** The CRI RuntimeService of a containerd socket: each method takes a request and resolves with its response. */
export interface CriRuntime {
  call<T = Record<string, unknown>>(method: string, request: object, seconds?: number): Promise<T>;
  close(): void;
}

export function criRuntime(socket: string): CriRuntime {
  const definition = loadSync(join(REPO, "e2e/fixtures/cri/api.proto"), {
    // Field names as the .proto spells them; int64 as strings and enums by name, as the kubelet logs them.
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
  });
  const pkg = loadPackageDefinition(definition) as unknown as { runtime: { v1: { RuntimeService: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client } } };
  const client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, credentials.createInsecure());
  return {
    call<T>(method: string, request: object, seconds = 60): Promise<T> {
      const fn = (client as unknown as Record<string, Call>)[method];
      if (!fn) throw new Error(`CRI RuntimeService has no method ${method} in api.proto`);
      return new Promise((resolve, reject) => {
        fn.call(client, request, { deadline: new Date(Date.now() + seconds * 1000) }, (err, response) => {
          if (err) reject(new Error(`CRI ${method}: ${err.details || err.message}`));
          else resolve(response as T);
        });
      });
    },
    close: () => client.close(),
  };
}
