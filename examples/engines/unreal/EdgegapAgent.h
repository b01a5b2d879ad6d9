// Talks to edgegap-agent, the entrypoint of this server's container, over its localhost API:
// the same calls as the example game server (examples/game_server.rs).
// Needs "HTTP" and "Json" in your module's PublicDependencyModuleNames (Build.cs).
//
// Lifecycle hooks (e.g. in your AGameModeBase subclass, dedicated server only):
//   BeginPlay()          -> FEdgegapAgent::FetchDeployment(...), FEdgegapAgent::StartHeartbeats()
//                           and, once the level is loaded and the net driver listens,
//                           FEdgegapAgent::MarkReady()
//   PostLogin(NewPlayer) -> FEdgegapAgent::PlayerConnected(id), and Logout(Exiting) ->
//                           FEdgegapAgent::PlayerDisconnected(id), with the same id for both
//                           (e.g. PlayerState->GetUniqueId().ToString()); the agent's
//                           --idle-timeout and --empty-timeout count these
//   your match-over code -> FEdgegapAgent::EndMatch(TEXT("reason")): the agent self-stops the
//                           deployment and sends SIGTERM after the delay
//   EndPlay()            -> FEdgegapAgent::StopHeartbeats()
// Heartbeats ride the game thread's core ticker: with the agent's --heartbeat-timeout, a hung
// game thread stops them and the agent kills the server.
// SIGTERM: Unreal's Linux signal handler requests an engine exit (FCoreDelegates::OnPreExit,
// EndPlay with EEndPlayReason::Quit): save there, within the grace period.
//
// Bodies are written by FJsonSerializer from an FJsonObject, never by hand: a reason or a
// player id with quotes, apostrophes, backslashes, newlines or emoji is still valid JSON.
#pragma once

#include "CoreMinimal.h"
#include "Containers/Ticker.h"
#include "Dom/JsonObject.h"

class FEdgegapAgent
{
public:
	/** Calls OnJson with the body of GET /v1/deployment (empty if the agent is unreachable). */
	static void FetchDeployment(TFunction<void(const FString& Json)> OnJson);
	static void MarkReady();
	/** POST /v1/heartbeat every IntervalSeconds until StopHeartbeats(). */
	static void StartHeartbeats(float IntervalSeconds = 5.0f);
	static void StopHeartbeats();
	static void PlayerConnected(const FString& PlayerId);
	static void PlayerDisconnected(const FString& PlayerId);
	static void EndMatch(const FString& Reason, const FString& Delay = TEXT("5s"));

private:
	static void Post(const FString& Path, const TSharedRef<FJsonObject>& Body);
	static FTSTicker::FDelegateHandle HeartbeatHandle;
};
