// Talks to edgegap-agent, the entrypoint of this server's container, over its localhost API.
// Needs "HTTP" in your module's PublicDependencyModuleNames (Build.cs).
//
// Lifecycle hooks (e.g. in your AGameModeBase subclass, dedicated server only):
//   BeginPlay()          -> FEdgegapAgent::FetchDeployment(...) and, once the level is loaded
//                           and the net driver listens, FEdgegapAgent::MarkReady()
//   your match-over code -> FEdgegapAgent::EndMatch(TEXT("reason")): the agent self-stops the
//                           deployment and sends SIGTERM after the delay
// SIGTERM: Unreal's Linux signal handler requests an engine exit (FCoreDelegates::OnPreExit,
// EndPlay with EEndPlayReason::Quit): save there, within the grace period.
#pragma once

#include "CoreMinimal.h"

class FEdgegapAgent
{
public:
	/** Calls OnJson with the body of GET /v1/deployment (empty if the agent is unreachable). */
	static void FetchDeployment(TFunction<void(const FString& Json)> OnJson);
	static void MarkReady();
	static void EndMatch(const FString& Reason, const FString& Delay = TEXT("5s"));

private:
	static void Post(const FString& Path, const FString& Json);
};
